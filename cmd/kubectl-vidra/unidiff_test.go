package main

import (
	"math/rand/v2"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestWriteUnifiedGolden(t *testing.T) {
	before := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.27
        name: web
`
	after := strings.Replace(strings.Replace(before, "replicas: 2", "replicas: 3", 1), "nginx:1.27", "nginx:1.28", 1)
	var b strings.Builder
	changed := writeUnified(&b, "live/apps/Deployment/shop/web", "feature/apps/Deployment/shop/web", before, after, 3, painter{})
	assert.Assert(t, changed)
	assert.Equal(t, b.String(), `--- live/apps/Deployment/shop/web
+++ feature/apps/Deployment/shop/web
@@ -4,7 +4,7 @@
   name: web
   namespace: shop
 spec:
-  replicas: 2
+  replicas: 3
   selector:
     matchLabels:
       app: web
@@ -14,5 +14,5 @@
         app: web
     spec:
       containers:
-      - image: nginx:1.27
+      - image: nginx:1.28
         name: web
`)

	// With more context the two hunks merge into one.
	b.Reset()
	writeUnified(&b, "a", "b", before, after, 5, painter{})
	assert.Equal(t, strings.Count(b.String(), "@@ -"), 1)
	assert.Assert(t, strings.Contains(b.String(), "@@ -2,17 +2,17 @@"), b.String())
}

func TestWriteUnifiedAddDeleteEqual(t *testing.T) {
	var b strings.Builder
	assert.Assert(t, !writeUnified(&b, "a", "b", "x\ny\n", "x\ny\n", 3, painter{}))
	assert.Equal(t, b.String(), "")

	writeUnified(&b, "/dev/null", "b/x", "", "one\ntwo\n", 3, painter{})
	assert.Equal(t, b.String(), "--- /dev/null\n+++ b/x\n@@ -0,0 +1,2 @@\n+one\n+two\n")

	b.Reset()
	writeUnified(&b, "a/x", "/dev/null", "one\n", "", 3, painter{})
	assert.Equal(t, b.String(), "--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-one\n")

	// An insertion in the middle, no context: the empty side's start is
	// the line before.
	b.Reset()
	writeUnified(&b, "a", "b", "1\n2\n3\n", "1\n2\nnew\n3\n", 0, painter{})
	assert.Equal(t, b.String(), "--- a\n+++ b\n@@ -2,0 +3 @@\n+new\n")
}

func TestWriteUnifiedColor(t *testing.T) {
	var b strings.Builder
	writeUnified(&b, "a", "b", "x\n", "y\n", 3, painter{on: true})
	assert.Equal(t, b.String(), "\x1b[1m--- a\x1b[0m\n\x1b[1m+++ b\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-x\x1b[0m\n\x1b[32m+y\x1b[0m\n")
}

// lcsLength is the textbook dynamic programme, to check that the edit
// scripts are shortest.
func lcsLength(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func TestDiffLinesIsShortestAndApplies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d"}
	gen := func() []string {
		n := r.IntN(12)
		out := make([]string, n)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return out
	}
	for i := 0; i < 3000; i++ {
		a, b := gen(), gen()
		edits := diffLines(a, b)
		var gotA, gotB []string
		changes := 0
		for _, e := range edits {
			if e.op != opInsert {
				gotA = append(gotA, e.text)
			}
			if e.op != opDelete {
				gotB = append(gotB, e.text)
			}
			if e.op != opEqual {
				changes++
			}
		}
		assert.Equal(t, strings.Join(gotA, ","), strings.Join(a, ","))
		assert.Equal(t, len(gotA), len(a))
		assert.Equal(t, strings.Join(gotB, ","), strings.Join(b, ","))
		assert.Equal(t, len(gotB), len(b))
		assert.Equal(t, changes, len(a)+len(b)-2*lcsLength(a, b), "a=%q b=%q", a, b)
		// Within a run of changes, deletions come first.
		for j := 1; j < len(edits); j++ {
			assert.Assert(t, !(edits[j-1].op == opInsert && edits[j].op == opDelete), "a=%q b=%q", a, b)
		}
	}
}

func TestDiffLinesBeyondTheLimit(t *testing.T) {
	// Completely different texts longer than the search limit fall back to
	// removing then adding everything, which is still a correct diff.
	var a, b []string
	for i := 0; i < maxEditDistance; i++ {
		a = append(a, "a"+strings.Repeat("x", i%7))
		b = append(b, "b"+strings.Repeat("y", i%5))
	}
	edits := diffLines(a, b)
	assert.Equal(t, len(edits), len(a)+len(b))
	assert.Equal(t, edits[0].op, opDelete)
	assert.Equal(t, edits[len(edits)-1].op, opInsert)
}

func TestSplitLines(t *testing.T) {
	assert.Equal(t, len(splitLines("")), 0)
	assert.DeepEqual(t, splitLines("a\nb\n"), []string{"a", "b"})
	assert.DeepEqual(t, splitLines("a\nb"), []string{"a", "b"})
	assert.DeepEqual(t, splitLines("\n"), []string{""})
}
