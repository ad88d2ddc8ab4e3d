package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/controllers/manifest"
)

// Kinds of change, in the words the summary uses.
const (
	actionAdd    = "added"
	actionChange = "changed"
	actionDelete = "deleted"
)

// objectChange is one object whose state would change: before is the live
// object (nil when it would be added), after the dry-run result (nil when
// it would be deleted).
type objectChange struct {
	key    manifest.Key
	server string // normalized; "" for the local cluster
	before *unstructured.Unstructured
	after  *unstructured.Unstructured
}

func (c *objectChange) action() string {
	switch {
	case c.before == nil:
		return actionAdd
	case c.after == nil:
		return actionDelete
	}
	return actionChange
}

// serverFields are the metadata fields the server owns; they change on
// every write and say nothing about what the manifest changes.
var serverFields = []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}

// cleanForDiff returns a copy of u without the server-managed fields and
// without status.
func cleanForDiff(u *unstructured.Unstructured) *unstructured.Unstructured {
	if u == nil {
		return nil
	}
	out := u.DeepCopy()
	delete(out.Object, "status")
	if md, ok := out.Object["metadata"].(map[string]any); ok {
		for _, f := range serverFields {
			delete(md, f)
		}
	}
	return out
}

// maskSecret replaces the values of a Secret's data and stringData with
// masks, as kubectl diff does, so a diff never prints secret values but
// still shows which keys change: "***" when a value is the same on both
// sides, "*** (before)" and "*** (after)" when it changes.
func maskSecret(before, after *unstructured.Unstructured) {
	for _, field := range []string{"data", "stringData"} {
		var b, a map[string]any
		if before != nil {
			b, _ = before.Object[field].(map[string]any)
		}
		if after != nil {
			a, _ = after.Object[field].(map[string]any)
		}
		for k, bv := range b {
			av, inAfter := a[k]
			switch {
			case !inAfter:
				b[k] = "***"
			case fmt.Sprint(av) == fmt.Sprint(bv):
				b[k], a[k] = "***", "***"
			default:
				b[k], a[k] = "*** (before)", "*** (after)"
			}
		}
		for k := range a {
			if _, inBefore := b[k]; !inBefore {
				a[k] = "***"
			}
		}
	}
}

// renderYAML prints an object for the diff, keys sorted.
func renderYAML(u *unstructured.Unstructured) (string, error) {
	if u == nil {
		return "", nil
	}
	data, err := yaml.Marshal(u.Object)
	if err != nil {
		return "", fmt.Errorf("render %s as YAML: %w", manifest.SecretSafe(u), err)
	}
	return string(data), nil
}

// objectPath names an object in the diff's file headers:
// <group or "core">/<Kind>[/<namespace>]/<name>, after the server's host
// for a remote cluster.
func objectPath(key manifest.Key, server string) string {
	group := key.Group
	if group == "" {
		group = "core"
	}
	parts := []string{group, key.Kind}
	if key.Namespace != "" {
		parts = append(parts, key.Namespace)
	}
	parts = append(parts, key.Name)
	path := strings.Join(parts, "/")
	if server != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
		path = host + "/" + path
	}
	return path
}

// diffSummary counts what a diff shows.
type diffSummary struct {
	added, changed, deleted int
}

func (s diffSummary) total() int { return s.added + s.changed + s.deleted }

// sortChanges orders changes as they would be applied: by server, kind
// rank (Namespaces and CRDs first), then identity.
func sortChanges(changes []objectChange) {
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if a.server != b.server {
			return a.server < b.server
		}
		ra, rb := manifest.Order(a.key.Kind, a.key.Group), manifest.Order(b.key.Kind, b.key.Group)
		if ra != rb {
			return ra < rb
		}
		return a.key.String() < b.key.String()
	})
}

// renderDiff prints a unified diff per changed object: the live object
// against what the source would make of it. from and to label the two
// sides ("live", the branch). Changes with no visible difference once the
// server's fields are stripped are skipped. It returns the counts shown.
func renderDiff(w io.Writer, changes []objectChange, from, to string, context int, p painter) (diffSummary, error) {
	var sum diffSummary
	for i := range changes {
		c := &changes[i]
		before, after := cleanForDiff(c.before), cleanForDiff(c.after)
		if c.key.Kind == "Secret" && c.key.Group == "" {
			maskSecret(before, after)
		}
		a, err := renderYAML(before)
		if err != nil {
			return sum, err
		}
		b, err := renderYAML(after)
		if err != nil {
			return sum, err
		}
		if a == b {
			continue
		}
		path := objectPath(c.key, c.server)
		fromLabel, toLabel := from+"/"+path, to+"/"+path
		if before == nil {
			fromLabel = "/dev/null"
		}
		if after == nil {
			toLabel = "/dev/null"
		}
		title := c.key.String()
		if c.server != "" {
			title += " on " + c.server
		}
		action := c.action()
		var word string
		switch action {
		case actionAdd:
			word = p.green(action)
			sum.added++
		case actionDelete:
			word = p.red(action)
			sum.deleted++
		default:
			word = p.yellow(action)
			sum.changed++
		}
		fmt.Fprintf(w, "%s %s (%s)\n", p.bold("==="), p.bold(title), word)
		writeUnified(w, fromLabel, toLabel, a, b, context, p)
	}
	return sum, nil
}

// summaryLine is the last line of a diff: what would change, or "no changes".
func summaryLine(sum diffSummary, unchanged int, to string) string {
	if sum.total() == 0 {
		return fmt.Sprintf("no changes: %s matches the cluster (%s)", to, plural(unchanged, "object"))
	}
	var parts []string
	if sum.added > 0 {
		parts = append(parts, fmt.Sprintf("%d added", sum.added))
	}
	if sum.changed > 0 {
		parts = append(parts, fmt.Sprintf("%d changed", sum.changed))
	}
	if sum.deleted > 0 {
		parts = append(parts, fmt.Sprintf("%d deleted", sum.deleted))
	}
	return fmt.Sprintf("%s would change %s: %s; %d unchanged", to, plural(sum.total(), "object"), strings.Join(parts, ", "), unchanged)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
