package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// splitLines splits text into lines without their terminators. The empty
// text has no lines; a final newline does not start another line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// hunkRange prints a range as diff -u does: "start" for one line,
// "start,len" otherwise; an empty range starts at the line before.
func hunkRange(from, to int) string {
	start, length := from+1, to-from
	switch length {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, length)
}

// writeUnified prints the unified diff of two texts with the given labels
// and reports whether they differ. Nothing is printed when they are equal.
// go-difflib finds the changes and groups them into hunks of context lines;
// the lines are printed here so they can be coloured.
func writeUnified(w io.Writer, fromLabel, toLabel, a, b string, context int, p painter) bool {
	if a == b {
		return false
	}
	al, bl := splitLines(a), splitLines(b)
	groups := difflib.NewMatcher(al, bl).GetGroupedOpCodes(max(context, 0))
	if len(groups) == 0 {
		return false
	}
	fmt.Fprintln(w, p.bold("--- "+fromLabel))
	fmt.Fprintln(w, p.bold("+++ "+toLabel))
	for _, g := range groups {
		first, last := g[0], g[len(g)-1]
		fmt.Fprintln(w, p.cyan(fmt.Sprintf("@@ -%s +%s @@", hunkRange(first.I1, last.I2), hunkRange(first.J1, last.J2))))
		for _, c := range g {
			if c.Tag == 'e' {
				for _, l := range al[c.I1:c.I2] {
					fmt.Fprintln(w, " "+l)
				}
				continue
			}
			// A replacement is its removals, then its additions, as in diff(1).
			if c.Tag == 'r' || c.Tag == 'd' {
				for _, l := range al[c.I1:c.I2] {
					fmt.Fprintln(w, p.red("-"+l))
				}
			}
			if c.Tag == 'r' || c.Tag == 'i' {
				for _, l := range bl[c.J1:c.J2] {
					fmt.Fprintln(w, p.green("+"+l))
				}
			}
		}
	}
	return true
}
