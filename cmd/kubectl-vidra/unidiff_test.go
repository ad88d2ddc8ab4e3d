package main

import (
	"fmt"
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

// applyUnified applies a unified diff with no context to a, so random
// texts can be checked: the diff of a and b, applied to a, gives b.
func applyUnified(t *testing.T, a []string, diff string) []string {
	t.Helper()
	var out []string
	next := 0 // index in a of the next line not yet copied
	for _, line := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n")[2:] {
		switch {
		case strings.HasPrefix(line, "@@ -"):
			var start, length int
			head := strings.Fields(line)[1][1:]
			if n, _ := fmt.Sscanf(head, "%d,%d", &start, &length); n == 1 {
				length = 1
			}
			if length > 0 {
				start--
			}
			out = append(out, a[next:start]...)
			next = start
		case strings.HasPrefix(line, "-"):
			assert.Equal(t, a[next], line[1:])
			next++
		case strings.HasPrefix(line, "+"):
			out = append(out, line[1:])
		default:
			t.Fatalf("unexpected line %q in a diff without context", line)
		}
	}
	return append(out, a[next:]...)
}

func TestWriteUnifiedApplies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d", "e"}
	for range 300 {
		var a, b []string
		for range r.IntN(12) {
			a = append(a, words[r.IntN(len(words))])
		}
		for range r.IntN(12) {
			b = append(b, words[r.IntN(len(words))])
		}
		text := func(l []string) string {
			if len(l) == 0 {
				return ""
			}
			return strings.Join(l, "\n") + "\n"
		}
		var out strings.Builder
		changed := writeUnified(&out, "a", "b", text(a), text(b), 0, painter{})
		assert.Equal(t, changed, text(a) != text(b))
		if !changed {
			continue
		}
		got := applyUnified(t, a, out.String())
		assert.DeepEqual(t, strings.Join(got, "\n"), strings.Join(b, "\n"))
	}
}

func TestSplitLines(t *testing.T) {
	assert.Equal(t, len(splitLines("")), 0)
	assert.DeepEqual(t, splitLines("a\nb\n"), []string{"a", "b"})
	assert.DeepEqual(t, splitLines("a\nb"), []string{"a", "b"})
	assert.DeepEqual(t, splitLines("\n"), []string{""})
}
