package main

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
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

// objectHealth is a small kstatus: whether a live object has reached the
// state its spec asks for, judged from the status fields of common kinds
// and, for others, from a Ready condition when there is one.
func objectHealth(u *unstructured.Unstructured) (state, message string) {
	if u == nil {
		return stateMissing, "not found in the cluster"
	}
	if u.GetDeletionTimestamp() != nil {
		return stateTerminating, "being deleted"
	}
	obj := u.Object
	if gen := u.GetGeneration(); gen > 0 {
		if observed, found, _ := unstructured.NestedInt64(obj, "status", "observedGeneration"); found && observed < gen {
			return stateInProgress, fmt.Sprintf("generation %d not observed yet", gen)
		}
	}
	num := func(fields ...string) int64 {
		v, _, _ := unstructured.NestedInt64(obj, fields...)
		return v
	}
	group := u.GroupVersionKind().Group
	switch {
	case group == "apps" && (u.GetKind() == "Deployment" || u.GetKind() == "StatefulSet" || u.GetKind() == "ReplicaSet"):
		want := int64(1)
		if v, found, _ := unstructured.NestedInt64(obj, "spec", "replicas"); found {
			want = v
		}
		ready := num("status", "readyReplicas")
		updated := num("status", "updatedReplicas")
		if u.GetKind() == "ReplicaSet" {
			updated = num("status", "replicas")
		}
		if ready < want || updated < want {
			return stateInProgress, fmt.Sprintf("%d/%d replicas ready", ready, want)
		}
		return stateReady, fmt.Sprintf("%d/%d replicas ready", ready, want)
	case group == "apps" && u.GetKind() == "DaemonSet":
		want, ready := num("status", "desiredNumberScheduled"), num("status", "numberReady")
		if ready < want {
			return stateInProgress, fmt.Sprintf("%d/%d pods ready", ready, want)
		}
		return stateReady, fmt.Sprintf("%d/%d pods ready", ready, want)
	case group == "batch" && u.GetKind() == "Job":
		if c := findCondition(obj, "Failed"); c == "True" {
			return stateFailed, "job failed"
		}
		if c := findCondition(obj, "Complete"); c == "True" {
			return stateReady, "complete"
		}
		return stateInProgress, "running"
	case group == "" && u.GetKind() == "PersistentVolumeClaim":
		phase, _, _ := unstructured.NestedString(obj, "status", "phase")
		if phase == "Bound" {
			return stateReady, "bound"
		}
		return stateInProgress, "phase " + orDash(phase)
	case group == "" && u.GetKind() == "Pod":
		phase, _, _ := unstructured.NestedString(obj, "status", "phase")
		switch {
		case phase == "Succeeded":
			return stateReady, "succeeded"
		case phase == "Failed":
			return stateFailed, "failed"
		case findCondition(obj, "Ready") == "True":
			return stateReady, ""
		}
		return stateInProgress, "phase " + orDash(phase)
	}
	switch findCondition(obj, "Ready") {
	case "True":
		return stateReady, ""
	case "False":
		return stateInProgress, "Ready condition is False"
	}
	// Most kinds (ConfigMaps, Services, RBAC...) are done once they exist.
	return stateReady, ""
}

// findCondition returns the status of a condition in status.conditions.
func findCondition(obj map[string]any, typ string) string {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if t, _ := m["type"].(string); t == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
