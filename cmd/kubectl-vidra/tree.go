package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// treeNode is one line of a tree, with detail lines printed under it and
// its children below those.
type treeNode struct {
	text     string
	details  []string
	children []*treeNode
}

// writeTree prints roots separated by blank lines, children drawn with
// box-drawing connectors:
//
//	root
//	│ detail
//	├── child
//	│   └── grandchild
//	└── child
func writeTree(w io.Writer, roots []*treeNode) {
	for i, r := range roots {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, r.text)
		writeBody(w, r, "")
	}
}

// writeBody prints a node's details and children; prefix is what stands
// left of the node's own connector column.
func writeBody(w io.Writer, n *treeNode, prefix string) {
	bar := "  "
	if len(n.children) > 0 {
		bar = "│ "
	}
	for _, d := range n.details {
		fmt.Fprintln(w, strings.TrimRight(prefix+bar+d, " "))
	}
	for i, c := range n.children {
		last := i == len(n.children)-1
		connector, next := "├── ", "│   "
		if last {
			connector, next = "└── ", "    "
		}
		fmt.Fprintln(w, prefix+connector+c.text)
		writeBody(w, c, prefix+next)
	}
}

// statusTree turns a status report into trees: sync → artifacts →
// VidraResources → objects. now fixes the ages, so the output is a pure
// function of its inputs.
func statusTree(r *statusReport, now time.Time, p painter) []*treeNode {
	var roots []*treeNode
	for i := range r.Syncs {
		roots = append(roots, syncNode(&r.Syncs[i], now, p))
	}
	if len(r.Standalone) > 0 {
		root := &treeNode{text: p.bold("VidraResources without a sync")}
		for i := range r.Standalone {
			root.children = append(root.children, resourceNode(&r.Standalone[i], now, p, ""))
		}
		roots = append(roots, root)
	}
	return roots
}

func syncNode(s *syncReport, now time.Time, p painter) *treeNode {
	kind := "InfrahubSync"
	if s.Kind != "" {
		kind = s.Kind
	}
	n := &treeNode{text: joinFields(
		kind+" "+p.bold(s.Name),
		p.state(s.State),
		"age "+age(now, s.CreationTimestamp),
	)}
	if s.Message != "" {
		n.details = append(n.details, s.Message)
	}
	if s.Git != nil {
		n.details = append(n.details, gitSource(s.Git))
	} else {
		source := fmt.Sprintf("source: %s branch %s", s.InfrahubAPIURL, s.Branch)
		if s.TargetDate != "" {
			source += " at " + s.TargetDate
		}
		source += " artifact " + s.ArtifactName
		n.details = append(n.details, source)
	}
	dest := "destination: " + s.Destination
	if s.Destination == "local" {
		dest = "destination: local cluster"
	}
	n.details = append(n.details, dest+", namespace "+s.DestinationNamespace)
	last := "last sync: never"
	if s.LastSyncTime != nil {
		last = "last sync: " + age(now, *s.LastSyncTime) + " ago"
	}
	if s.LastHandledReconcileAt != "" {
		last += ", last reconcile request handled: " + s.LastHandledReconcileAt
	}
	if s.ReconcileRequestedAt != "" && s.ReconcileRequestedAt != s.LastHandledReconcileAt {
		last += ", reconcile requested: " + s.ReconcileRequestedAt + " (pending)"
	}
	n.details = append(n.details, p.dim(last))
	if s.LastError != "" {
		n.details = append(n.details, p.red("last error: "+s.LastError))
	}
	if len(s.Artifacts) == 0 && len(s.Unlisted) == 0 {
		n.details = append(n.details, p.dim(map[bool]string{false: "no artifacts listed", true: "no manifests read"}[s.Git != nil]))
	}
	for i := range s.Artifacts {
		n.children = append(n.children, artifactNode(&s.Artifacts[i], now, p))
	}
	for i := range s.Unlisted {
		n.children = append(n.children, resourceNode(&s.Unlisted[i], now, p, "artifact no longer listed"))
	}
	return n
}

func artifactNode(a *artifactReport, now time.Time, p painter) *treeNode {
	label := "Artifact " + a.ID
	if a.Target != "" && a.Target != a.ID {
		label += " (" + a.Target + ")"
	}
	status := a.Status
	if status == "" {
		status = stateUnknown
	}
	fields := []string{label, p.state(status)}
	if a.Unit != "" {
		// A directory or file of a commit has no state of its own.
		fields = []string{a.Unit + " " + a.ID}
	}
	if a.Checksum != "" && p.wide {
		fields = append(fields, p.dim("checksum "+a.Checksum))
	} else if a.Checksum != "" {
		fields = append(fields, p.dim("checksum "+short(a.Checksum, 12)))
	}
	n := &treeNode{text: joinFields(fields...)}
	if a.Resource != nil {
		n.children = append(n.children, resourceNode(a.Resource, now, p, ""))
	} else {
		n.details = append(n.details, p.dim("no VidraResource yet"))
	}
	return n
}

func resourceNode(r *resourceReport, now time.Time, p painter, note string) *treeNode {
	objects := plural(r.ObjectCount, "object")
	fields := []string{"VidraResource " + r.Name, p.state(r.State), objects, "age " + age(now, r.CreationTimestamp)}
	if note != "" {
		fields = append(fields, p.yellow("("+note+")"))
	}
	n := &treeNode{text: joinFields(fields...)}
	if r.Destination != "local" {
		n.details = append(n.details, "destination: "+r.Destination)
	}
	if (r.State != stateReady || p.wide) && r.Message != "" {
		n.details = append(n.details, r.Message)
	}
	if r.LastError != "" {
		n.details = append(n.details, p.red("last error: "+r.LastError))
	}
	for i := range r.Objects {
		n.children = append(n.children, objectNode(&r.Objects[i], now, p))
	}
	return n
}

func objectNode(o *objectReport, now time.Time, p painter) *treeNode {
	kind := o.Kind
	if group, _, found := strings.Cut(o.APIVersion, "/"); found {
		kind += "." + group
	}
	name := o.Name
	if o.Namespace != "" {
		name = o.Namespace + "/" + o.Name
	}
	state := o.State
	if state == "" {
		state = stateUnknown
	}
	fields := []string{kind + " " + name, p.state(state)}
	if o.Message != "" {
		fields = append(fields, o.Message)
	}
	if o.CreationTimestamp != nil {
		fields = append(fields, "age "+age(now, *o.CreationTimestamp))
	}
	return &treeNode{text: joinFields(fields...)}
}

// joinFields separates the columns of a tree line by two spaces.
func joinFields(fields ...string) string {
	var out []string
	for _, f := range fields {
		if f != "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, "  ")
}

// age is kubectl's human duration ("5m", "3h4m", "12d").
func age(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return duration.HumanDuration(d)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
