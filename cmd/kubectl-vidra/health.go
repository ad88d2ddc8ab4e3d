package main

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/health"
)

// States shown for syncs, VidraResources and objects.
const (
	stateReady       = "Ready"
	stateReconciling = "Reconciling"
	stateFailed      = "Failed"
	stateStalled     = "Stalled"
	stateSuspended   = "Suspended"
	stateUnknown     = "Unknown"
	stateMissing     = "Missing"
	stateInProgress  = "InProgress"
	stateTerminating = "Terminating"
	stateNotChecked  = "NotChecked"
)

// conditionState summarises the kstatus-style conditions the operator
// writes on both kinds: one word, the Ready reason and its message.
func conditionState(conds []metav1.Condition, generation int64, suspended bool) (state, reason, message string) {
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	if ready != nil {
		reason, message = ready.Reason, ready.Message
	}
	switch {
	case suspended:
		// The operator keeps Ready as it was and reports the pause in a
		// Suspended condition (earlier versions turned Ready false).
		if s := meta.FindStatusCondition(conds, v1alpha1.ConditionSuspended); s != nil && s.Status == metav1.ConditionTrue {
			return stateSuspended, s.Reason, s.Message
		}
		if ready != nil && ready.Reason == "Suspended" {
			return stateSuspended, reason, message
		}
		return stateSuspended, reason, "suspension not yet acknowledged by the operator"
	case ready == nil:
		return stateUnknown, "", "not reconciled yet"
	case ready.ObservedGeneration != generation:
		return stateReconciling, reason, fmt.Sprintf("generation %d not reconciled yet", generation)
	case ready.Status == metav1.ConditionTrue:
		return stateReady, reason, message
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled):
		return stateStalled, reason, message
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReconciling):
		return stateReconciling, reason, message
	}
	return stateFailed, reason, message
}

// objectHealth judges a live object with the operator's own rules
// (controllers/health), in the plugin's words: Current is shown as Ready.
func objectHealth(u *unstructured.Unstructured) (state, message string) {
	if u == nil {
		return stateMissing, "not found in the cluster"
	}
	if u.GetDeletionTimestamp() != nil {
		return stateTerminating, "being deleted"
	}
	r := health.Of(u)
	switch r.Status {
	case health.Current:
		return stateReady, r.Message
	case health.Failed:
		return stateFailed, r.Message
	case health.InProgress:
		return stateInProgress, r.Message
	}
	return stateUnknown, r.Message
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
