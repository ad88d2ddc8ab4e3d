package manifest

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// MaxDiffPaths is how many paths Diff lists before it only counts.
const MaxDiffPaths = 8

// builtinGroups are the groups whose types the API server serializes with
// Go's omitempty, so an empty list in a manifest is stored as no field at
// all. Custom resources keep empty lists, so there a missing field is drift.
var builtinGroups = map[string]bool{
	"":                             true,
	"admissionregistration.k8s.io": true,
	"apiextensions.k8s.io":         true,
	"apiregistration.k8s.io":       true,
	"apps":                         true,
	"autoscaling":                  true,
	"batch":                        true,
	"certificates.k8s.io":          true,
	"coordination.k8s.io":          true,
	"discovery.k8s.io":             true,
	"events.k8s.io":                true,
	"flowcontrol.apiserver.k8s.io": true,
	"networking.k8s.io":            true,
	"node.k8s.io":                  true,
	"policy":                       true,
	"rbac.authorization.k8s.io":    true,
	"resource.k8s.io":              true,
	"scheduling.k8s.io":            true,
	"storage.k8s.io":               true,
}

// quantityParents are the built-in maps whose values are resource
// quantities, which the server rewrites in canonical form ("0.5" becomes
// "500m", 1 becomes "1").
var quantityParents = map[string]bool{
	"limits":               true, // resources.limits
	"requests":             true, // resources.requests, PVC spec.resources.requests
	"hard":                 true, // ResourceQuota
	"capacity":             true, // PersistentVolume
	"max":                  true, // LimitRange
	"min":                  true,
	"default":              true,
	"defaultRequest":       true,
	"maxLimitRequestRatio": true,
	"overhead":             true, // Pod
	"podFixed":             true, // RuntimeClass
}

// Equivalent reports whether applying desired would leave live as it is:
// every field desired sets is in live with an equal value, while fields only
// live has (server defaults, other managers' fields) are fine.
//
// Values compare by JSON meaning: numbers numerically whatever their Go
// type, lists element-wise with equal length. A field desired sets to null
// equals a missing one. An empty desired map or list equals a missing live
// field only where the server is known to drop it (labels, annotations,
// empty lists of built-in kinds); anywhere else it counts as a difference,
// because a false "different" costs one no-op apply while a false "same"
// would hide drift. For built-in kinds resource quantities compare by value
// and a Secret's stringData compares with the decoded data the server keeps.
// status and the server-owned metadata fields are ignored.
func Equivalent(desired, live *unstructured.Unstructured) bool {
	if desired == nil || live == nil {
		return false
	}
	c := newComparer(desired, false)
	c.object(desired.Object, live.Object)
	return c.count == 0
}

// Diff lists the paths, like ".spec.replicas" or
// `.metadata.labels["app.kubernetes.io/name"]`, where Equivalent finds live
// differs from desired. It lists at most MaxDiffPaths, sorted, then
// "(N more)". It names paths only, never values, so it is safe for Secrets.
func Diff(desired, live *unstructured.Unstructured) []string {
	if desired == nil || live == nil {
		if desired == live {
			return nil
		}
		return []string{"."}
	}
	c := newComparer(desired, true)
	c.object(desired.Object, live.Object)
	sort.Strings(c.diffs)
	if len(c.diffs) > MaxDiffPaths {
		more := len(c.diffs) - MaxDiffPaths
		c.diffs = append(c.diffs[:MaxDiffPaths], fmt.Sprintf("(%d more)", more))
	}
	return c.diffs
}

type comparer struct {
	builtin    bool
	quantities bool
	secret     bool
	collect    bool // Diff: gather every path; Equivalent: stop at the first
	count      int
	diffs      []string
	path       []step
}

// step is one element of a path: a map key, or a list index when index >= 0.
type step struct {
	key   string
	index int
}

func newComparer(desired *unstructured.Unstructured, collect bool) *comparer {
	k := KeyOf(desired)
	builtin := builtinGroups[k.Group]
	return &comparer{
		builtin: builtin,
		// CRD schemas are built-in but hold arbitrary "default" maps.
		quantities: builtin && k.Group != "apiextensions.k8s.io",
		secret:     k.Group == "" && k.Kind == "Secret",
		collect:    collect,
		path:       make([]step, 0, 16),
	}
}

func (c *comparer) done() bool { return !c.collect && c.count > 0 }

func (c *comparer) report() {
	c.count++
	if c.collect {
		c.diffs = append(c.diffs, c.render())
	}
}

func (c *comparer) render() string {
	if len(c.path) == 0 {
		return "."
	}
	var b strings.Builder
	for _, s := range c.path {
		switch {
		case s.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		case isIdentifier(s.key):
			b.WriteByte('.')
			b.WriteString(s.key)
		default:
			b.WriteByte('[')
			b.WriteString(strconv.Quote(s.key))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// member compares desired key k of a map with the same key in live.
func (c *comparer) member(k string, dv any, live map[string]any) {
	lv, ok := live[k]
	c.path = append(c.path, step{key: k, index: -1})
	c.value(dv, lv, ok)
	c.path = c.path[:len(c.path)-1]
}

// object compares the top level, where status is skipped and metadata and
// Secret data have rules of their own.
func (c *comparer) object(d, l map[string]any) {
	// The server never returns stringData; when live has it anyway (it
	// is another manifest, not a server object) compare it as it is.
	stringData, _ := d["stringData"].(map[string]any)
	if _, liveHas := l["stringData"]; liveHas {
		stringData = nil
	}
	for k, dv := range d {
		if c.done() {
			return
		}
		switch {
		case k == "status":
		case k == "metadata":
			c.metadata(dv, l)
		case c.secret && k == "stringData" && stringData != nil:
			c.stringData(stringData, l)
		case c.secret && k == "data" && stringData != nil:
			c.secretData(dv, stringData, l)
		default:
			c.member(k, dv, l)
		}
	}
}

func (c *comparer) metadata(dv any, l map[string]any) {
	dm, ok := dv.(map[string]any)
	if !ok {
		c.member("metadata", dv, l)
		return
	}
	lm, _ := l["metadata"].(map[string]any)
	c.path = append(c.path, step{key: "metadata", index: -1})
	for k, v := range dm {
		if c.done() {
			break
		}
		if serverMetadata[k] {
			continue
		}
		// An empty namespace is how a cluster-scoped object is stored: none.
		if k == "namespace" && v == "" {
			if lv := lm[k]; lv == nil || lv == "" {
				continue
			}
		}
		c.member(k, v, lm)
	}
	c.path = c.path[:len(c.path)-1]
}

// stringData is write-only: the server merges it into data, base64 encoded.
func (c *comparer) stringData(sd map[string]any, l map[string]any) {
	ld, _ := l["data"].(map[string]any)
	for k, v := range sd {
		if c.done() {
			return
		}
		c.path = append(c.path, step{key: "stringData", index: -1}, step{key: k, index: -1})
		s, isString := v.(string)
		enc, _ := ld[k].(string)
		dec, err := base64.StdEncoding.DecodeString(enc)
		if _, present := ld[k]; !isString || !present || err != nil || string(dec) != s {
			c.report()
		}
		c.path = c.path[:len(c.path)-2]
	}
}

// secretData compares data without the keys stringData overrides.
func (c *comparer) secretData(dv any, sd map[string]any, l map[string]any) {
	dm, ok := dv.(map[string]any)
	if !ok {
		c.member("data", dv, l)
		return
	}
	ld, _ := l["data"].(map[string]any)
	c.path = append(c.path, step{key: "data", index: -1})
	for k, v := range dm {
		if c.done() {
			break
		}
		if _, overridden := sd[k]; !overridden {
			c.member(k, v, ld)
		}
	}
	c.path = c.path[:len(c.path)-1]
}

// value compares a desired value with the live one; present says whether
// live has the field at all.
func (c *comparer) value(dv, lv any, present bool) {
	if !present || lv == nil {
		switch {
		case dv == nil:
			return
		case isEmptyMap(dv) && c.atLabelsOrAnnotations():
			return
		case !present && c.builtin && isEmptyList(dv):
			return
		case !present:
			c.report()
			return
		}
	}
	switch d := dv.(type) {
	case map[string]any:
		l, ok := lv.(map[string]any)
		if !ok {
			c.report()
			return
		}
		for k, v := range d {
			if c.done() {
				return
			}
			c.member(k, v, l)
		}
	case []any:
		l, ok := lv.([]any)
		if !ok || len(l) != len(d) {
			c.report()
			return
		}
		for i := range d {
			if c.done() {
				return
			}
			c.path = append(c.path, step{index: i})
			c.value(d[i], l[i], true)
			c.path = c.path[:len(c.path)-1]
		}
	case string:
		if l, ok := lv.(string); (ok && l == d) || c.quantityEqual(dv, lv) {
			return
		}
		c.report()
	case bool:
		if l, ok := lv.(bool); !ok || l != d {
			c.report()
		}
	case nil:
		c.report() // live is set, desired asks for null
	default:
		if dn, ok := toNumber(dv); ok {
			if ln, ok := toNumber(lv); (ok && equalNumbers(dn, ln)) || c.quantityEqual(dv, lv) {
				return
			}
			c.report()
			return
		}
		if !reflect.DeepEqual(dv, lv) {
			c.report()
		}
	}
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}

func (c *comparer) atLabelsOrAnnotations() bool {
	return len(c.path) == 2 && c.path[0].key == "metadata" &&
		(c.path[1].key == "labels" || c.path[1].key == "annotations")
}

// quantityEqual compares resource quantities of built-in kinds by value.
func (c *comparer) quantityEqual(dv, lv any) bool {
	n := len(c.path)
	if !c.quantities || n < 2 || c.path[n-1].index >= 0 {
		return false
	}
	if !quantityParents[c.path[n-2].key] && c.path[n-1].key != "sizeLimit" {
		return false
	}
	dq, ok := asQuantity(dv)
	if !ok {
		return false
	}
	lq, ok := asQuantity(lv)
	return ok && dq.Cmp(lq) == 0
}

func asQuantity(v any) (resource.Quantity, bool) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	default:
		n, ok := toNumber(v)
		if !ok {
			return resource.Quantity{}, false
		}
		if n.isInt {
			s = strconv.FormatInt(n.i, 10)
		} else {
			s = strconv.FormatFloat(n.f, 'f', -1, 64)
		}
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil
}
