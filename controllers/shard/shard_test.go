package shard

import (
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, canonical string
		sharded       bool
		wantErr       bool
	}{
		{in: "", canonical: ""},
		{in: "sharding.infrahub.operators.com/key in (shard1)", canonical: "sharding.infrahub.operators.com/key in (shard1)", sharded: true},
		{in: "!sharding.infrahub.operators.com/key", canonical: "!sharding.infrahub.operators.com/key", sharded: true},
		{in: "sharding.infrahub.operators.com/key notin (shard1,shard2)", canonical: "sharding.infrahub.operators.com/key notin (shard1,shard2)", sharded: true},
		{in: "sharding.infrahub.operators.com/key in (", wantErr: true},
		{in: "a b c", wantErr: true},
	} {
		s, err := Parse(tc.in)
		if tc.wantErr {
			assert.ErrorContains(t, err, "label selector", tc.in)
			continue
		}
		assert.NilError(t, err, tc.in)
		assert.Equal(t, s.Sharded(), tc.sharded, tc.in)
		assert.Equal(t, s.String(), tc.canonical, tc.in)
	}
}

func TestMatchesAndTweak(t *testing.T) {
	main, err := Parse("!" + Label)
	assert.NilError(t, err)
	one, err := Parse(Label + " in (shard1)")
	assert.NilError(t, err)
	unlabelled := map[string]string{"x": "y"}
	inOne := map[string]string{Label: "shard1"}
	assert.Assert(t, main.Matches(unlabelled))
	assert.Assert(t, !main.Matches(inOne))
	assert.Assert(t, one.Matches(inOne))
	assert.Assert(t, !one.Matches(unlabelled))
	var none *Selector
	assert.Assert(t, none.Matches(inOne) && none.Matches(unlabelled))

	o := metav1.ListOptions{}
	one.TweakListOptions(&o)
	assert.Equal(t, o.LabelSelector, Label+" in (shard1)")
	o = metav1.ListOptions{LabelSelector: "a=b"}
	one.TweakListOptions(&o)
	assert.Equal(t, o.LabelSelector, "a=b,"+Label+" in (shard1)")
	o = metav1.ListOptions{}
	none.TweakListOptions(&o)
	assert.Equal(t, o.LabelSelector, "")
}

func TestLeaseName(t *testing.T) {
	none, _ := Parse("")
	assert.Equal(t, none.LeaseName("vidra-operator"), "vidra-operator")
	a, _ := Parse(Label + " in (shard1)")
	b, _ := Parse(Label + " in (shard2)")
	main, _ := Parse("!" + Label)
	names := map[string]bool{a.LeaseName("vidra-operator"): true, b.LeaseName("vidra-operator"): true, main.LeaseName("vidra-operator"): true}
	assert.Equal(t, len(names), 3, "every shard its own lease: %v", names)
	// The same selector written differently is the same shard.
	a2, _ := Parse(Label + "  in  ( shard1 )")
	assert.Equal(t, a2.LeaseName("vidra-operator"), a.LeaseName("vidra-operator"))
}

func TestSame(t *testing.T) {
	obj := func(l map[string]string) *metav1.ObjectMeta { return &metav1.ObjectMeta{Labels: l} }
	assert.Assert(t, Same(obj(nil), obj(map[string]string{"a": "b"})))
	assert.Assert(t, Same(obj(map[string]string{Label: "x"}), obj(map[string]string{Label: "x"})))
	assert.Assert(t, !Same(obj(map[string]string{Label: "x"}), obj(map[string]string{Label: "y"})))
	assert.Assert(t, !Same(obj(map[string]string{Label: ""}), obj(nil)))
}
