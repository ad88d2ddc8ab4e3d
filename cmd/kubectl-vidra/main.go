// Command kubectl-vidra is the kubectl plugin for Vidra: it shows what an
// InfrahubSync did (status), triggers and waits for reconciles, suspends and
// resumes syncs, previews what an Infrahub branch would change in the
// cluster (diff), and writes the Secrets the operator reads (credentials,
// cluster).
//
// Installed on the PATH as kubectl-vidra it runs as `kubectl vidra ...`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Exit codes, as kubectl's: 1 when a command fails, 2 for a mistake on the
// command line. diff follows diff(1) and kubectl diff: 1 means "there are
// changes", anything above that it could not tell (3 when it failed).
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitChanges   = 1
	exitDiffError = 3
)

func main() {
	// client-go and the cluster package log through klog; a CLI reports
	// through its own messages, and the API server's warnings still reach
	// stderr through client-go's warning handler.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &app{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		isTTY:  isTerminal(os.Stdout),
		now:    time.Now,
	})
	stop()
	os.Exit(code)
}

// app is what every command needs from the process: its streams and
// environment, and the flags shared by all commands.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	isTTY          bool
	now            func() time.Time

	kube kubeFlags
}

// run executes one command line and returns the exit code. Errors are
// printed as one line on stderr.
func run(ctx context.Context, args []string, a *app) int {
	err := dispatch(ctx, args, a)
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) && ec.err == nil {
		return ec.code
	}
	fmt.Fprintln(a.stderr, "error: "+oneLine(err.Error()))
	var ue *usageError
	switch {
	case errors.As(err, &ec):
		return ec.code
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailure
}

// exitCodeError ends the command with a given code; with a nil err nothing
// is printed (diff's "there are changes").
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// usageError is a mistake on the command line; the message points at help.
type usageError struct {
	command string
	msg     string
}

func (e *usageError) Error() string {
	help := "kubectl vidra help"
	if e.command != "" {
		help = "kubectl vidra " + e.command + " --help"
	}
	return fmt.Sprintf("%s (see '%s')", e.msg, help)
}

func usagef(command, format string, args ...any) error {
	return &usageError{command: command, msg: fmt.Sprintf(format, args...)}
}

// oneLine folds a multi-line message (API server errors, joined errors)
// into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// isTerminal reports whether f is a character device (a terminal), using
// only the standard library.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}
