package infrahubsync

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/health"
)

// healthSummary adds up the health of the sync's VidraResources into
// status.health and the Healthy condition. A VidraResource that reported
// no health yet counts as one Unknown object.
func (c *Controller) healthSummary(sync *v1alpha1.InfrahubSync, status *v1alpha1.InfrahubSyncStatus) {
	owned, err := c.ownedResources(sync)
	if err != nil {
		return
	}
	var cond metav1.Condition
	status.Health, cond = HealthOf(owned, sync.Generation)
	meta.SetStatusCondition(&status.Conditions, cond)
}

// HealthOf adds up the health of a sync's VidraResources: the summary and
// the Healthy condition, for any sync kind.
func HealthOf(owned []*v1alpha1.VidraResource, generation int64) (*v1alpha1.HealthSummary, metav1.Condition) {
	sum := v1alpha1.HealthSummary{Status: v1alpha1.HealthCurrent}
	var unhealthy []string
	for _, vr := range owned {
		h := vr.Status.Health
		if h == nil {
			h = &v1alpha1.HealthSummary{Status: v1alpha1.HealthUnknown, Unknown: 1}
		}
		sum.Current += h.Current
		sum.InProgress += h.InProgress
		sum.Failed += h.Failed
		sum.Unknown += h.Unknown
		if health.Worse(health.Status(h.Status), health.Status(sum.Status)) {
			sum.Status = h.Status
		}
		if h.Status != v1alpha1.HealthCurrent {
			unhealthy = append(unhealthy, fmt.Sprintf("%s is %s", vr.Name, h.Status))
		}
	}
	sort.Strings(unhealthy)
	shown := unhealthy
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(unhealthy)-5))
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionHealthy, Reason: sum.Status, ObservedGeneration: generation}
	total := sum.Current + sum.InProgress + sum.Failed + sum.Unknown
	switch sum.Status {
	case v1alpha1.HealthCurrent:
		cond.Status, cond.Message = metav1.ConditionTrue, fmt.Sprintf("All %d objects of %d VidraResources are healthy", total, len(owned))
	case v1alpha1.HealthUnknown:
		cond.Status = metav1.ConditionUnknown
	default:
		cond.Status = metav1.ConditionFalse
	}
	if cond.Message == "" {
		cond.Message = fmt.Sprintf("%d failed, %d in progress, %d unknown of %d objects: %s", sum.Failed, sum.InProgress, sum.Unknown, total, strings.Join(shown, "; "))
	}
	return &sum, cond
}

// healthOf is what a sync's status depends on in a VidraResource's health.
func healthOf(vr *v1alpha1.VidraResource) v1alpha1.HealthSummary {
	if vr.Status.Health == nil {
		return v1alpha1.HealthSummary{}
	}
	return *vr.Status.Health
}
