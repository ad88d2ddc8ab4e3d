package conditions

import (
	"strings"
	"testing"
	"unicode/utf8"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Message: "Synced 1 artifact"}, "Synced 1 artifact"},
		{Result{Message: "Suspended: objects are neither applied nor pruned"}, "Suspended"},
		{Result{Message: "The manifest holds no objects; nothing was applied or removed"}, "The manifest holds no objects"},
		{Result{Message: `Reading artifacts "X: y" from Infrahub failed; nothing was changed: 502`}, `Reading artifacts "X`},
		{Result{Summary: "2 of 5 objects failed", Message: "2 of 5 objects failed: a; b"}, "2 of 5 objects failed"},
		{Result{Message: "https://infrahub.example.com/graphql returned 401"}, "https://infrahub.example.com/graphql returned 401"},
	} {
		assert.Equal(t, Summary(tc.r), tc.want)
	}
	long := Summary(Result{Message: strings.Repeat("ünïcode words ", 40)})
	assert.Assert(t, utf8.RuneCountInString(long) <= v1alpha1.MaxSummary, long)
	assert.Assert(t, strings.HasSuffix(long, "..."), long)
	assert.Assert(t, utf8.ValidString(long))
	assert.Assert(t, len(Summary(Result{Summary: strings.Repeat("x", 300)})) <= v1alpha1.MaxSummary)
}

func TestCount(t *testing.T) {
	assert.Equal(t, Count(0, "artifact", ""), "0 artifacts")
	assert.Equal(t, Count(1, "artifact", ""), "1 artifact")
	assert.Equal(t, Count(4, "object", ""), "4 objects")
	assert.Equal(t, Count(1, "object was", "objects were"), "1 object was")
	assert.Equal(t, Count(2, "object was", "objects were"), "2 objects were")
}

// Suspending keeps Ready as it was and adds Suspended; resuming removes it.
func TestApplySuspendedKeepsReady(t *testing.T) {
	var conds []metav1.Condition
	Apply(&conds, 1, Result{Ready: true, Reason: "Synced", Message: "Synced 2 artifacts"})
	Apply(&conds, 2, Result{Suspended: true, Reason: "Suspended", Message: "Suspended: paused"})
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	assert.Equal(t, ready.Status, metav1.ConditionTrue)
	assert.Equal(t, ready.Message, "Synced 2 artifacts")
	assert.Assert(t, meta.IsStatusConditionTrue(conds, v1alpha1.ConditionSuspended))

	Apply(&conds, 3, Result{Ready: true, Reason: "Synced", Message: "Synced 2 artifacts"})
	assert.Assert(t, meta.FindStatusCondition(conds, v1alpha1.ConditionSuspended) == nil)

	// Suspended before any pass: readiness is unknown, not false.
	var fresh []metav1.Condition
	Apply(&fresh, 1, Result{Suspended: true, Reason: "Suspended", Message: "Suspended"})
	assert.Equal(t, meta.FindStatusCondition(fresh, v1alpha1.ConditionReady).Status, metav1.ConditionUnknown)
}
