// Package shard splits the syncs between several operator instances, as
// Flux does: each instance watches only the objects its label selector
// matches (e.g. "sharding.infrahub.operators.com/key in (shard1)" for a
// shard, "!sharding.infrahub.operators.com/key" for the main instance) and
// has its own leader-election Lease. A sync's VidraResources carry the
// sync's shard label, so they are handled by the same instance.
package shard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// Label is the key whose value names a sync's shard.
const Label = v1alpha1.LabelShard

// Selector is the set of objects one operator instance handles. The zero
// value (or a nil pointer) selects everything: no sharding.
type Selector struct {
	sel labels.Selector
}

// Parse reads a -watch-label-selector value; "" selects everything.
func Parse(s string) (*Selector, error) {
	if s == "" {
		return &Selector{}, nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("label selector %q: %w", s, err)
	}
	if sel.Empty() {
		return &Selector{}, nil
	}
	return &Selector{sel: sel}, nil
}

// Sharded reports whether the instance sees only part of the objects.
func (s *Selector) Sharded() bool { return s != nil && s.sel != nil }

// String is the canonical form of the selector; "" when not sharded.
func (s *Selector) String() string {
	if !s.Sharded() {
		return ""
	}
	return s.sel.String()
}

// Matches reports whether an object with these labels belongs to the
// instance.
func (s *Selector) Matches(l map[string]string) bool {
	return !s.Sharded() || s.sel.Matches(labels.Set(l))
}

// TweakListOptions restricts the lists and watches of an informer to the
// shard; pass it to a factory's WithTweakListOptions. Any informer of a
// sync kind, or of the kinds a sync writes, takes it.
func (s *Selector) TweakListOptions(o *metav1.ListOptions) {
	if !s.Sharded() {
		return
	}
	if o.LabelSelector == "" {
		o.LabelSelector = s.sel.String()
		return
	}
	o.LabelSelector += "," + s.sel.String()
}

// LeaseName is the Lease an instance with this selector elects its leader
// with: base itself when not sharded, else base plus a short hash of the
// selector, so every shard has its own lease and replicas of the same
// shard share theirs.
func (s *Selector) LeaseName(base string) string {
	if !s.Sharded() {
		return base
	}
	sum := sha256.Sum256([]byte(s.sel.String()))
	return base + "-" + hex.EncodeToString(sum[:])[:10]
}

// Of returns an object's shard label: its value and whether it is set.
func Of(obj metav1.Object) (string, bool) {
	v, ok := obj.GetLabels()[Label]
	return v, ok
}

// Same reports whether two objects carry the same shard label (both
// without counts as the same).
func Same(a, b metav1.Object) bool {
	av, aok := Of(a)
	bv, bok := Of(b)
	return aok == bok && av == bv
}
