package main

import "fmt"

// colorFlag is --color=auto|always|never.
func colorFlag(f *flags) *stringChoice {
	c := &stringChoice{value: "auto", choices: []string{"auto", "always", "never"}}
	f.Var(c, "color", "colour the output, `mode`: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	return c
}

// useColor decides --color=auto: a terminal, NO_COLOR unset or empty
// (https://no-color.org) and not a dumb terminal.
func (a *app) useColor(mode string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return a.isTTY && a.getenv("NO_COLOR") == "" && a.getenv("TERM") != "dumb"
}

// painter wraps text in ANSI colours when enabled.
// painter renders the text output: colours when on, and with wide (-o wide)
// the details the default output shortens or leaves out.
type painter struct{ on, wide bool }

func (p painter) wrap(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return fmt.Sprintf("\x1b[%sm%s\x1b[0m", code, s)
}

func (p painter) bold(s string) string   { return p.wrap("1", s) }
func (p painter) dim(s string) string    { return p.wrap("2", s) }
func (p painter) red(s string) string    { return p.wrap("31", s) }
func (p painter) green(s string) string  { return p.wrap("32", s) }
func (p painter) yellow(s string) string { return p.wrap("33", s) }
func (p painter) blue(s string) string   { return p.wrap("34", s) }
func (p painter) cyan(s string) string   { return p.wrap("36", s) }

// state colours a readiness word: green when fine, red when failed,
// yellow while in progress or unknown, blue when deliberately paused.
func (p painter) state(s string) string {
	switch s {
	case stateReady, "Current":
		return p.green(s)
	case stateFailed, stateStalled, stateMissing, "Error":
		return p.red(s)
	case stateSuspended:
		return p.blue(s)
	default:
		return p.yellow(s)
	}
}
