package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand. Its run function builds its own FlagSet with
// newFlags, so `help <command>` and `<command> --help` print the same text.
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
Flags accepted by every command:
  --kubeconfig FILE   kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config)
  --context NAME      kubeconfig context to use
  --request-timeout D timeout of each API request (default 30s)

Run 'kubectl vidra help <command>' or 'kubectl vidra <command> --help' for details.
`

func writeRootUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, rootUsage, b.String())
}

func dispatch(ctx context.Context, args []string, a *app) error {
	root := flag.NewFlagSet("kubectl vidra", flag.ContinueOnError)
	root.SetOutput(io.Discard)
	a.kube.register(root)
	showVersion := root.Bool("version", false, "print the version")
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeRootUsage(a.stdout)
			return nil
		}
		return usagef("", "%v", err)
	}
	if *showVersion {
		return runVersion(ctx, a, nil)
	}
	rest := root.Args()
	if len(rest) == 0 {
		writeRootUsage(a.stdout)
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
		writeRootUsage(a.stdout)
		return nil
	}
	cmd, ok := findCommand(args[0])
	if !ok || cmd.name == "help" {
		if !ok {
			return usagef("", "unknown command %q", args[0])
		}
		writeRootUsage(a.stdout)
		return nil
	}
	return cmd.run(context.Background(), a, append(append([]string{}, args[1:]...), "--help"))
}

// flags is a command's FlagSet with its help text.
type flags struct {
	*flag.FlagSet
	command string
	usage   string // first line(s): synopsis and description
	a       *app
	// aliases maps a flag name to the primary name shown in help.
	aliases map[string]string
}

// newFlags returns a FlagSet for a command with the shared kubeconfig
// flags registered.
func (a *app) newFlags(command, usage string) *flags {
	fs := flag.NewFlagSet("kubectl vidra "+command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &flags{FlagSet: fs, command: command, usage: usage, a: a, aliases: map[string]string{}}
	a.kube.register(fs)
	return f
}

// alias registers name as another name of the flag primary.
func (f *flags) alias(name, primary string) {
	fl := f.Lookup(primary)
	f.Var(fl.Value, name, fl.Usage)
	f.aliases[name] = primary
}

// operatorNamespace registers --operator-namespace (alias -n, --namespace).
func (f *flags) operatorNamespace(p *string) {
	f.StringVar(p, "operator-namespace", defaultOperatorNamespace, "the operator's namespace, where its Secrets live")
	f.alias("n", "operator-namespace")
	f.alias("namespace", "operator-namespace")
}

func (f *flags) printHelp(w io.Writer) {
	fmt.Fprintln(w, strings.TrimRight(f.usage, "\n"))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	names := map[string][]string{}
	var primaries []string
	f.VisitAll(func(fl *flag.Flag) {
		p, isAlias := f.aliases[fl.Name]
		if !isAlias {
			p = fl.Name
			primaries = append(primaries, p)
		}
		names[p] = append(names[p], fl.Name)
	})
	sort.Strings(primaries)
	for _, p := range primaries {
		fl := f.Lookup(p)
		var shown []string
		for _, n := range names[p] {
			if len(n) == 1 {
				shown = append(shown, "-"+n)
			} else {
				shown = append(shown, "--"+n)
			}
		}
		sort.Slice(shown, func(i, j int) bool {
			return len(shown[i]) < len(shown[j]) || len(shown[i]) == len(shown[j]) && shown[i] < shown[j]
		})
		arg, usage := flag.UnquoteUsage(fl)
		head := strings.Join(shown, ", ")
		if arg != "" {
			head += " " + arg
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		if len(head) > 28 {
			fmt.Fprintf(w, "  %s\n  %-28s %s%s\n", head, "", usage, def)
			continue
		}
		fmt.Fprintf(w, "  %-28s %s%s\n", head, usage, def)
	}
}

// parse parses flags placed anywhere among the arguments (kubectl style);
// "--" ends the flags. It returns the positional arguments, or errHelp
// after printing the help for -h/--help.
func (f *flags) parse(args []string) ([]string, error) {
	var after []string
	for i, s := range args {
		if s == "--" {
			args, after = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	rest := args
	for {
		if err := f.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printHelp(f.a.stdout)
				return nil, errHelp
			}
			return nil, usagef(f.command, "%v", err)
		}
		rest = f.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	return append(positional, after...), nil
}

// errHelp ends a command successfully after its help was printed.
var errHelp = &exitCodeError{code: exitOK}

// isSet reports whether a flag (or one of its aliases) was given.
func (f *flags) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == name || f.aliases[fl.Name] == name {
			set = true
		}
	})
	return set
}

// stringChoice is a flag.Value accepting one of a fixed set of strings.
type stringChoice struct {
	value   string
	choices []string
}

func (c *stringChoice) String() string { return c.value }

func (c *stringChoice) Set(s string) error {
	for _, ok := range c.choices {
		if s == ok {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.choices, ", "))
}
