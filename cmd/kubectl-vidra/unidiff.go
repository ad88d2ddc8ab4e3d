package main

import (
	"fmt"
	"io"
	"strings"
)

// op is one line of an edit script.
type op byte

const (
	opEqual  op = ' '
	opDelete op = '-'
	opInsert op = '+'
)

type edit struct {
	op   op
	text string
}

// maxEditDistance bounds the Myers search: its memory grows with the square
// of the number of differing lines. Beyond it the differing middle is shown
// as removed then added, which is still a correct diff.
const maxEditDistance = 2000

// splitLines splits text into lines without their terminators. The empty
// text has no lines; a final newline does not start another line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// diffLines returns a shortest edit script turning a into b (Myers' greedy
// algorithm, "An O(ND) Difference Algorithm and Its Variations", 1986),
// after trimming the common prefix and suffix.
func diffLines(a, b []string) []edit {
	prefix := 0
	for prefix < len(a) && prefix < len(b) && a[prefix] == b[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(a)-prefix && suffix < len(b)-prefix && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	out := make([]edit, 0, len(a)+len(b))
	for _, l := range a[:prefix] {
		out = append(out, edit{opEqual, l})
	}
	out = append(out, myers(a[prefix:len(a)-suffix], b[prefix:len(b)-suffix])...)
	for _, l := range a[len(a)-suffix:] {
		out = append(out, edit{opEqual, l})
	}
	return out
}

// myers finds the edit script by exploring, for growing edit distance d,
// the furthest-reaching path on each diagonal k = x - y, then walks the
// recorded frontiers back from the end. Deletions come before insertions
// within a change, as in diff(1).
func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return replaceAll(a, b)
	}
	limit := n + m
	if limit > maxEditDistance {
		limit = maxEditDistance
	}
	offset := limit + 1
	v := make([]int, 2*limit+3)
	// trace[d] is v as it was before step d, restricted to diagonals -d..d.
	var trace [][]int
	for d := 0; d <= limit; d++ {
		snapshot := make([]int, 2*d+1)
		copy(snapshot, v[offset-d:offset+d+1])
		trace = append(trace, snapshot)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[offset+k-1] < v[offset+k+1]) {
				x = v[offset+k+1] // down: an insertion
			} else {
				x = v[offset+k-1] + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[offset+k] = x
			if x >= n && y >= m {
				return backtrack(a, b, trace, d)
			}
		}
	}
	return replaceAll(a, b)
}

func backtrack(a, b []string, trace [][]int, final int) []edit {
	at := func(d, k int) int { return trace[d][k+d] } // v before step d on diagonal k
	var rev []edit
	x, y := len(a), len(b)
	for d := final; d > 0; d-- {
		k := x - y
		var prevK int
		// Step d started from v as recorded before it, exactly as the
		// forward pass chose.
		if k == -d || (k != d && at(d, k-1) < at(d, k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(d, prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			rev = append(rev, edit{opEqual, a[x-1]})
			x--
			y--
		}
		if x == prevX {
			rev = append(rev, edit{opInsert, b[y-1]})
		} else {
			rev = append(rev, edit{opDelete, a[x-1]})
		}
		x, y = prevX, prevY
	}
	for x > 0 && y > 0 {
		rev = append(rev, edit{opEqual, a[x-1]})
		x--
		y--
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return deletionsFirst(out)
}

// deletionsFirst reorders each run of changes so its deletions precede its
// insertions, which reads best and is what diff(1) prints.
func deletionsFirst(edits []edit) []edit {
	out := make([]edit, 0, len(edits))
	for i := 0; i < len(edits); {
		if edits[i].op == opEqual {
			out = append(out, edits[i])
			i++
			continue
		}
		j := i
		for j < len(edits) && edits[j].op != opEqual {
			j++
		}
		for _, e := range edits[i:j] {
			if e.op == opDelete {
				out = append(out, e)
			}
		}
		for _, e := range edits[i:j] {
			if e.op == opInsert {
				out = append(out, e)
			}
		}
		i = j
	}
	return out
}

func replaceAll(a, b []string) []edit {
	out := make([]edit, 0, len(a)+len(b))
	for _, l := range a {
		out = append(out, edit{opDelete, l})
	}
	for _, l := range b {
		out = append(out, edit{opInsert, l})
	}
	return out
}

// hunk is a run of edits with its context and its position in both texts.
type hunk struct {
	aStart, aLen int // 1-based start line in a; when aLen is 0, the line before
	bStart, bLen int
	edits        []edit
}

// hunks groups the changes of an edit script with up to context unchanged
// lines around them, merging changes whose contexts touch.
func hunks(edits []edit, context int) []hunk {
	if context < 0 {
		context = 0
	}
	var out []hunk
	n := len(edits)
	i := 0
	for i < n {
		for i < n && edits[i].op == opEqual {
			i++
		}
		if i == n {
			break
		}
		start := max(i-context, 0)
		end := i // exclusive end of the last change seen
		for j := i; j < n; {
			if edits[j].op != opEqual {
				j++
				end = j
				continue
			}
			run := j
			for run < n && edits[run].op == opEqual {
				run++
			}
			if run == n || run-j > 2*context {
				break
			}
			j = run
		}
		stop := min(end+context, n)
		// Line numbers of the hunk's first line in each text.
		aLine, bLine := 1, 1
		for _, e := range edits[:start] {
			if e.op != opInsert {
				aLine++
			}
			if e.op != opDelete {
				bLine++
			}
		}
		h := hunk{aStart: aLine, bStart: bLine, edits: edits[start:stop]}
		for _, e := range h.edits {
			if e.op != opInsert {
				h.aLen++
			}
			if e.op != opDelete {
				h.bLen++
			}
		}
		if h.aLen == 0 {
			h.aStart--
		}
		if h.bLen == 0 {
			h.bStart--
		}
		out = append(out, h)
		i = stop
	}
	return out
}

// hunkRange prints a range as diff -u does: "start" for one line,
// "start,len" otherwise.
func hunkRange(start, length int) string {
	if length == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, length)
}

// writeUnified prints the unified diff of two texts with the given labels
// and reports whether they differ. Nothing is printed when they are equal.
func writeUnified(w io.Writer, fromLabel, toLabel, a, b string, context int, p painter) bool {
	edits := diffLines(splitLines(a), splitLines(b))
	hs := hunks(edits, context)
	if len(hs) == 0 {
		return false
	}
	fmt.Fprintln(w, p.bold("--- "+fromLabel))
	fmt.Fprintln(w, p.bold("+++ "+toLabel))
	for _, h := range hs {
		fmt.Fprintln(w, p.cyan(fmt.Sprintf("@@ -%s +%s @@", hunkRange(h.aStart, h.aLen), hunkRange(h.bStart, h.bLen))))
		for _, e := range h.edits {
			line := string(e.op) + e.text
			switch e.op {
			case opDelete:
				line = p.red(line)
			case opInsert:
				line = p.green(line)
			}
			fmt.Fprintln(w, line)
		}
	}
	return true
}
