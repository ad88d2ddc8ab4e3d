// Package conditions sets the kstatus-style Ready, Reconciling and Stalled
// conditions consistently on both kinds.
package conditions

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// maxMessage keeps condition messages readable in kubectl and small in etcd.
const maxMessage = 2048

// Result is the outcome of one reconcile, turned into conditions.
type Result struct {
	// Ready is true when the object's desired state is fully in place.
	Ready bool
	// Progressing is true when work is under way and will continue by itself.
	Progressing bool
	// Stalled is true when nothing will improve without a change by the user.
	Stalled bool
	Reason  string
	Message string
}

// Apply sets Ready, Reconciling and Stalled on conds from r. Transition
// times change only when a condition's status changes.
func Apply(conds *[]metav1.Condition, generation int64, r Result) {
	msg := Truncate(r.Message)
	ready := metav1.ConditionFalse
	if r.Ready {
		ready = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: ready, Reason: r.Reason, Message: msg, ObservedGeneration: generation,
	})
	setOrRemove(conds, v1alpha1.ConditionReconciling, r.Progressing, generation, r.Reason, msg)
	setOrRemove(conds, v1alpha1.ConditionStalled, r.Stalled, generation, r.Reason, msg)
}

// setOrRemove follows kstatus: abnormal-true conditions are present only
// while true.
func setOrRemove(conds *[]metav1.Condition, typ string, on bool, generation int64, reason, msg string) {
	if !on {
		meta.RemoveStatusCondition(conds, typ)
		return
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: generation,
	})
}

// Truncate shortens a message to what a condition should carry.
func Truncate(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return msg[:maxMessage-3] + "..."
}

// State maps a result onto the earlier operator's one-word state.
func State(r Result) v1alpha1.SyncState {
	switch {
	case r.Ready:
		return v1alpha1.StateSucceeded
	case r.Progressing:
		return v1alpha1.StateRunning
	default:
		return v1alpha1.StateFailed
	}
}
