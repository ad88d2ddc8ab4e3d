package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// command is one subcommand. Its run function builds its own FlagSet with
// newFlags, so `help <command>` and `<command> --help` print the same text.
// A new command is one more entry in commands().
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"status", "Show syncs, their artifacts, VidraResources and objects as a tree", runStatus},
		{"reconcile", "Ask the operator to reconcile a sync now, and optionally wait", runReconcile},
		{"suspend", "Stop a sync from reading Infrahub and applying", runSuspend},
		{"resume", "Resume a suspended sync", runResume},
		{"ui", "Serve a live dashboard of syncs, resources and objects on 127.0.0.1", runUI},
		{"diff", "Preview what Infrahub's artifacts (any branch or time) would change", runDiff},
		{"manifest", "Print the manifest a VidraResource applies, however it is stored", runManifest},
		{"credentials", "Write the Secret holding Infrahub credentials", runCredentials},
		{"cluster", "Write the kubeconfig Secret of a destination cluster", runCluster},
		{"version", "Print the plugin's version", runVersion},
		{"help", "Help about any command", runHelp},
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

const rootUsage = `kubectl vidra: inspect and drive Vidra, the Infrahub to Kubernetes operator.

Usage:
  kubectl vidra [flags] <command> [arguments] [flags]

Commands:
%s
Flags accepted by every command, before or after it (kubectl's):
%s
Exit status: 0 on success, 1 when the command failed, 2 for a mistake on the
command line (diff: 1 means there are changes, 3 that it failed).

Run 'kubectl vidra help <command>' or 'kubectl vidra <command> --help' for details.
`

func writeRootUsage(w io.Writer, a *app) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, rootUsage, b.String(), a.kube.flagSet().FlagUsagesWrapped(100))
}

func dispatch(ctx context.Context, args []string, a *app) error {
	root := pflag.NewFlagSet("kubectl vidra", pflag.ContinueOnError)
	root.SetOutput(io.Discard)
	root.SetNormalizeFunc(normalizeFlagName)
	// The command is the first argument that is not a flag; its own flags
	// are parsed by the command.
	root.SetInterspersed(false)
	root.AddFlagSet(a.kube.flagSet())
	showVersion := root.Bool("version", false, "print the version")
	help := root.BoolP("help", "h", false, "show this help")
	if err := root.Parse(args); err != nil {
		return usagef("", "%v", err)
	}
	if *help {
		writeRootUsage(a.stdout, a)
		return nil
	}
	if *showVersion {
		return runVersion(ctx, a, nil)
	}
	rest := root.Args()
	if len(rest) == 0 {
		writeRootUsage(a.stdout, a)
		return nil
	}
	cmd, ok := findCommand(rest[0])
	if !ok {
		return usagef("", "unknown command %q", rest[0])
	}
	return cmd.run(ctx, a, rest[1:])
}

func runHelp(_ context.Context, a *app, args []string) error {
	if len(args) == 0 {
		writeRootUsage(a.stdout, a)
		return nil
	}
	cmd, ok := findCommand(args[0])
	if !ok || cmd.name == "help" {
		if !ok {
			return usagef("", "unknown command %q", args[0])
		}
		writeRootUsage(a.stdout, a)
		return nil
	}
	return cmd.run(context.Background(), a, append(append([]string{}, args[1:]...), "--help"))
}

// normalizeFlagName keeps the plugin's earlier flag name working:
// --operator-namespace is --namespace.
func normalizeFlagName(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "operator-namespace" {
		name = "namespace"
	}
	return pflag.NormalizedName(name)
}

// flags is a command's FlagSet with its help text. The kubectl connection
// flags are added when parsing, after the command's own, so a command flag
// of the same name (cluster add --server) takes precedence there.
type flags struct {
	*pflag.FlagSet
	command string
	usage   string // first line(s): synopsis and description
	a       *app
}

// newFlags returns a FlagSet for a command.
func (a *app) newFlags(command, usage string) *flags {
	fs := pflag.NewFlagSet("kubectl vidra "+command, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(normalizeFlagName)
	fs.SortFlags = true
	return &flags{FlagSet: fs, command: command, usage: usage, a: a}
}

func (f *flags) printHelp(w io.Writer) {
	fmt.Fprintln(w, strings.TrimRight(f.usage, "\n"))
	fmt.Fprintln(w)
	own := pflag.NewFlagSet(f.Name(), pflag.ContinueOnError)
	f.VisitAll(func(fl *pflag.Flag) {
		if f.a.kube.flagSet().Lookup(fl.Name) != fl && fl.Name != "help" {
			own.AddFlag(fl)
		}
	})
	if own.HasFlags() {
		fmt.Fprintln(w, "Flags:")
		fmt.Fprint(w, own.FlagUsagesWrapped(100))
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Connection flags (kubectl's, also accepted before the command): --kubeconfig, --context,")
	fmt.Fprintln(w, "  --cluster, --user, --server, --token, --as, --as-group, --as-uid, --request-timeout,")
	fmt.Fprintln(w, "  -n/--namespace (the operator's namespace), ... ('kubectl vidra help' lists them all)")
}

// parse parses flags placed anywhere among the arguments (kubectl style);
// "--" ends the flags. It returns the positional arguments, or errHelp
// after printing the help for -h/--help.
func (f *flags) parse(args []string) ([]string, error) {
	f.AddFlagSet(f.a.kube.flagSet())
	help := f.BoolP("help", "h", false, "show this help")
	if err := f.Parse(args); err != nil {
		return nil, usagef(f.command, "%v", err)
	}
	if *help {
		f.printHelp(f.a.stdout)
		return nil, errHelp
	}
	return f.Args(), nil
}

// errHelp ends a command successfully after its help was printed.
var errHelp = &exitCodeError{code: exitOK}

// isSet reports whether a flag was given.
func (f *flags) isSet(name string) bool {
	fl := f.Lookup(name)
	return fl != nil && fl.Changed
}

// stringChoice is a flag value accepting one of a fixed set of strings.
type stringChoice struct {
	value   string
	choices []string
}

func (c *stringChoice) String() string { return c.value }
func (c *stringChoice) Type() string   { return strings.Join(c.choices, "|") }

func (c *stringChoice) Set(s string) error {
	for _, ok := range c.choices {
		if s == ok {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.choices, ", "))
}

// outputFlag registers -o/--output with the given formats, the first being
// the default.
func outputFlag(f *flags, formats ...string) *stringChoice {
	c := &stringChoice{value: formats[0], choices: formats}
	f.VarP(c, "output", "o", "output format: "+strings.Join(formats, ", "))
	return c
}
