package vidraresource

import (
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
)

// ConditionDriftWatch says whether the drift watches of a VidraResource's
// objects work. It is absent while nothing is watched for it.
const ConditionDriftWatch = v1alpha1.ConditionDriftWatch

// Reasons of ConditionDriftWatch.
const (
	ReasonWatching     = "Watching"
	ReasonWatchFailing = "WatchFailing"
)

// setWatchCondition reports the health of owner's drift watches on every
// cluster that watches something for it.
func (c *Controller) setWatchCondition(conds *[]metav1.Condition, owner string, generation int64) {
	var failing []string
	watched := 0
	for _, cl := range c.clusters.Clusters() {
		if cl == nil || cl.Watches == nil {
			continue
		}
		h := cl.Watches.OwnerWatchHealth(owner)
		watched += h.Resources
		for gvr, err := range h.Failing {
			what := "cannot list or watch"
			if apierrors.IsForbidden(err) {
				// Typically rbac.manage.scope=none, or a ServiceAccount
				// that may write but not watch.
				what = "may not list or watch"
			}
			failing = append(failing, fmt.Sprintf("%s on %s (Vidra %s it: %s)", gvr.GroupResource(), cl.Name(), what, reasonOf(err)))
		}
	}
	if watched == 0 {
		meta.RemoveStatusCondition(conds, ConditionDriftWatch)
		return
	}
	cond := metav1.Condition{Type: ConditionDriftWatch, Status: metav1.ConditionTrue, Reason: ReasonWatching,
		Message: "Drift watches work", ObservedGeneration: generation}
	if len(failing) > 0 {
		slices.Sort(failing)
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonWatchFailing
		cond.Message = conditions.Truncate("Drift is repaired only at the interval while the watch fails: " + strings.Join(failing, "; "))
	}
	meta.SetStatusCondition(conds, cond)
}
