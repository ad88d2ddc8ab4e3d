// Package health judges whether a live object has reached the state its spec
// asks for: a Deployment rolled out, a VM running, a network configuration
// pushed to its device. The operator records the result of every managed
// object in its VidraResource's status and the kubectl plugin shows it, so
// both read objects the same way.
//
// The rules are generic first (being deleted, a generation the object's
// controller has not observed yet, kstatus-style conditions) and then kind
// knowledge for workloads, claims, load balancers, KubeVirt and VirtRigaud
// VMs, Crossplane resources and SDC configurations. A kind nobody reports on
// (a ConfigMap, a Role) is Current once it exists.
package health

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Status is the health of one object, or the worst of several.
type Status string

const (
	// Current: the object is as its spec asks (running, bound, applied).
	Current Status = "Current"
	// InProgress: its controller is still working towards the spec.
	InProgress Status = "InProgress"
	// Failed: its controller reported an error it will not get past alone.
	Failed Status = "Failed"
	// Unknown: the object was not observed, so nothing can be said.
	Unknown Status = "Unknown"
)

// Result is the health of one object and why.
type Result struct {
	Status  Status
	Message string
}

// rank orders statuses from best to worst: Failed > InProgress > Unknown >
// Current.
func rank(s Status) int {
	switch s {
	case Current:
		return 0
	case Unknown:
		return 1
	case InProgress:
		return 2
	case Failed:
		return 3
	}
	return 1
}

// Worse reports whether a is worse than b.
func Worse(a, b Status) bool { return rank(a) > rank(b) }

// Valid reports whether s is one of the four statuses.
func Valid(s Status) bool {
	switch s {
	case Current, InProgress, Failed, Unknown:
		return true
	}
	return false
}

// MaxMessage bounds a message, which ends up in the VidraResource's status
// once per object.
const MaxMessage = 256

// Of judges a live object read from the API server with its status. A nil
// object is Unknown.
func Of(u *unstructured.Unstructured) Result {
	r := of(u)
	if len(r.Message) > MaxMessage {
		r.Message = strings.ToValidUTF8(r.Message[:MaxMessage-3], "") + "..."
	}
	return r
}

func of(u *unstructured.Unstructured) Result {
	if u == nil {
		return Result{Unknown, "not found"}
	}
	if u.GetDeletionTimestamp() != nil {
		return Result{InProgress, "being deleted"}
	}
	obj := u.Object
	if gen := u.GetGeneration(); gen > 0 {
		if observed, found, _ := unstructured.NestedInt64(obj, "status", "observedGeneration"); found && observed < gen {
			return Result{InProgress, fmt.Sprintf("generation %d not observed yet (observed %d)", gen, observed)}
		}
	}
	gvk := u.GroupVersionKind()
	if judge := kinds[groupKind{gvk.Group, gvk.Kind}]; judge != nil {
		return judge(obj)
	}
	switch {
	case gvk.Group == sdcGroup:
		return readyOnly(obj, "not yet applied to the device")
	case isCrossplane(gvk.Group, obj):
		return crossplane(obj)
	}
	return generic(obj)
}

type groupKind struct{ group, kind string }

// sdcGroup is SDC's config-server: Config, ConfigSet and friends report on
// the device with a Ready condition.
const sdcGroup = "config.sdcio.dev"

var kinds = map[groupKind]func(map[string]any) Result{
	{"apps", "Deployment"}:                    deployment,
	{"apps", "StatefulSet"}:                   statefulSet,
	{"apps", "DaemonSet"}:                     daemonSet,
	{"apps", "ReplicaSet"}:                    replicaSet,
	{"batch", "Job"}:                          job,
	{"", "PersistentVolumeClaim"}:             pvc,
	{"", "Service"}:                           service,
	{"", "Pod"}:                               pod,
	{"kubevirt.io", "VirtualMachine"}:         kubevirtVM,
	{"infra.virtrigaud.io", "VirtualMachine"}: virtrigaudVM,
}

func num(obj map[string]any, fields ...string) int64 {
	v, _, _ := unstructured.NestedInt64(obj, fields...)
	return v
}

func str(obj map[string]any, fields ...string) string {
	v, _, _ := unstructured.NestedString(obj, fields...)
	return v
}

// replicas is spec.replicas, which defaults to 1.
func replicas(obj map[string]any) int64 {
	if v, found, _ := unstructured.NestedInt64(obj, "spec", "replicas"); found {
		return v
	}
	return 1
}

func deployment(obj map[string]any) Result {
	if c := condition(obj, "Progressing"); c != nil && c.status == "False" && c.reason == "ProgressDeadlineExceeded" {
		return Result{Failed, orElse(c.message, "progress deadline exceeded")}
	}
	want := replicas(obj)
	updated, total := num(obj, "status", "updatedReplicas"), num(obj, "status", "replicas")
	available := num(obj, "status", "availableReplicas")
	switch {
	case updated < want:
		return Result{InProgress, fmt.Sprintf("%d of %d replicas updated", updated, want)}
	case total > updated:
		return Result{InProgress, fmt.Sprintf("%d old replicas pending termination", total-updated)}
	case available < updated:
		return Result{InProgress, fmt.Sprintf("%d of %d replicas available", available, want)}
	}
	return Result{Current, fmt.Sprintf("%d/%d replicas available", available, want)}
}

func statefulSet(obj map[string]any) Result {
	want := replicas(obj)
	ready := num(obj, "status", "readyReplicas")
	if ready < want {
		return Result{InProgress, fmt.Sprintf("%d of %d replicas ready", ready, want)}
	}
	if str(obj, "spec", "updateStrategy", "type") != "OnDelete" {
		partition := num(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
		if updated := num(obj, "status", "updatedReplicas"); partition == 0 && updated < want {
			return Result{InProgress, fmt.Sprintf("%d of %d replicas updated", updated, want)}
		}
		if cur, upd := str(obj, "status", "currentRevision"), str(obj, "status", "updateRevision"); partition == 0 && upd != "" && cur != upd {
			return Result{InProgress, "rolling update to revision " + upd + " in progress"}
		}
	}
	return Result{Current, fmt.Sprintf("%d/%d replicas ready", ready, want)}
}

func daemonSet(obj map[string]any) Result {
	want := num(obj, "status", "desiredNumberScheduled")
	updated, available := num(obj, "status", "updatedNumberScheduled"), num(obj, "status", "numberAvailable")
	switch {
	case updated < want:
		return Result{InProgress, fmt.Sprintf("%d of %d pods updated", updated, want)}
	case available < want:
		return Result{InProgress, fmt.Sprintf("%d of %d pods available", available, want)}
	}
	return Result{Current, fmt.Sprintf("%d/%d pods available", available, want)}
}

func replicaSet(obj map[string]any) Result {
	want, ready := replicas(obj), num(obj, "status", "readyReplicas")
	if ready < want {
		return Result{InProgress, fmt.Sprintf("%d of %d replicas ready", ready, want)}
	}
	return Result{Current, fmt.Sprintf("%d/%d replicas ready", ready, want)}
}

func job(obj map[string]any) Result {
	if c := condition(obj, "Failed"); c != nil && c.status == "True" {
		return Result{Failed, orElse(c.message, "job failed")}
	}
	if c := condition(obj, "Complete"); c != nil && c.status == "True" {
		return Result{Current, "complete"}
	}
	if c := condition(obj, "Suspended"); c != nil && c.status == "True" {
		return Result{InProgress, "suspended"}
	}
	return Result{InProgress, fmt.Sprintf("running: %d succeeded, %d active", num(obj, "status", "succeeded"), num(obj, "status", "active"))}
}

func pvc(obj map[string]any) Result {
	switch phase := str(obj, "status", "phase"); phase {
	case "Bound":
		return Result{Current, "bound"}
	case "Lost":
		return Result{Failed, "lost its volume"}
	default:
		return Result{InProgress, "phase " + orElse(phase, "Pending")}
	}
}

func service(obj map[string]any) Result {
	if str(obj, "spec", "type") != "LoadBalancer" {
		return Result{Current, ""}
	}
	ingress, _, _ := unstructured.NestedSlice(obj, "status", "loadBalancer", "ingress")
	if len(ingress) == 0 {
		return Result{InProgress, "waiting for a load balancer address"}
	}
	return Result{Current, "load balancer ready"}
}

func pod(obj map[string]any) Result {
	switch phase := str(obj, "status", "phase"); {
	case phase == "Succeeded":
		return Result{Current, "succeeded"}
	case phase == "Failed":
		return Result{Failed, orElse(str(obj, "status", "message"), "failed")}
	case conditionIs(obj, "Ready", "True"):
		return Result{Current, "running"}
	default:
		return Result{InProgress, "phase " + orElse(phase, "Pending")}
	}
}

// kubevirtFailures are the printableStatus values KubeVirt gives a VM that
// cannot start without help.
var kubevirtFailures = map[string]bool{
	"CrashLoopBackOff":        true,
	"ErrorUnschedulable":      true,
	"ErrImagePull":            true,
	"ImagePullBackOff":        true,
	"ErrorPvcNotFound":        true,
	"ErrorDataVolumeNotFound": true,
	"DataVolumeError":         true,
}

// kubevirtVM reads a KubeVirt VirtualMachine: status.ready is set once the
// VMI runs; a VM its spec keeps halted is Current when stopped.
func kubevirtVM(obj map[string]any) Result {
	printable := str(obj, "status", "printableStatus")
	if kubevirtFailures[printable] {
		return Result{Failed, printable}
	}
	if c := condition(obj, "Failure"); c != nil && c.status == "True" {
		return Result{Failed, orElse(c.message, c.reason)}
	}
	if ready, _, _ := unstructured.NestedBool(obj, "status", "ready"); ready {
		return Result{Current, orElse(printable, "Running")}
	}
	running, hasRunning, _ := unstructured.NestedBool(obj, "spec", "running")
	halted := str(obj, "spec", "runStrategy") == "Halted" || (hasRunning && !running)
	if halted && printable == "Stopped" {
		return Result{Current, "Stopped"}
	}
	return Result{InProgress, orElse(printable, "not started yet")}
}

// virtrigaudVM reads a VirtRigaud VirtualMachine: its phase, and its Ready
// condition when the provider reports one.
func virtrigaudVM(obj map[string]any) Result {
	phase := str(obj, "status", "phase")
	ready := condition(obj, "Ready")
	if phase == "Failed" {
		msg := "phase Failed"
		if ready != nil && ready.message != "" {
			msg += ": " + ready.message
		}
		return Result{Failed, msg}
	}
	if ready != nil && ready.status == "False" && failureReason(ready.reason) {
		return Result{Failed, orElse(ready.message, ready.reason)}
	}
	wantOff := strings.HasPrefix(str(obj, "spec", "powerState"), "Off")
	switch {
	case phase == "Running" && !wantOff && (ready == nil || ready.status == "True"):
		return Result{Current, "Running"}
	case phase == "Stopped" && wantOff:
		return Result{Current, "Stopped"}
	case ready != nil && ready.status == "False" && ready.message != "":
		return Result{InProgress, "phase " + orElse(phase, "Pending") + ": " + ready.message}
	}
	return Result{InProgress, "phase " + orElse(phase, "Pending")}
}

// isCrossplane recognises Crossplane resources: its own groups, and managed
// resources of any provider, which carry spec.forProvider.
func isCrossplane(group string, obj map[string]any) bool {
	if group == "crossplane.io" || strings.HasSuffix(group, ".crossplane.io") {
		return true
	}
	_, found, _ := unstructured.NestedMap(obj, "spec", "forProvider")
	return found
}

// crossplane reads Synced (did the provider reach the external API) and
// Ready (is the external resource available).
func crossplane(obj map[string]any) Result {
	synced, ready := condition(obj, "Synced"), condition(obj, "Ready")
	if synced != nil && synced.status == "False" {
		return Result{Failed, "not synced: " + orElse(synced.message, synced.reason)}
	}
	switch {
	case ready == nil && synced == nil:
		return Result{InProgress, "not yet reconciled by its provider"}
	case ready == nil:
		return Result{InProgress, "synced, waiting to become ready"}
	case ready.status == "True":
		return Result{Current, orElse(ready.reason, "Available")}
	}
	return Result{InProgress, strings.TrimSuffix(orElse(ready.reason, "not ready")+": "+ready.message, ": ")}
}

// readyOnly judges kinds whose controller always reports a Ready condition,
// so that its absence means nothing happened yet.
func readyOnly(obj map[string]any, pending string) Result {
	c := condition(obj, "Ready")
	switch {
	case c == nil:
		return Result{InProgress, pending}
	case c.status == "True":
		return Result{Current, orElse(c.message, "ready")}
	case c.status == "False" && failureReason(c.reason):
		return Result{Failed, orElse(c.message, c.reason)}
	}
	return Result{InProgress, strings.TrimSuffix(orElse(c.reason, "not ready")+": "+c.message, ": ")}
}

// generic applies kstatus-style conventions to any other kind: Stalled,
// Ready, Available, Synced and Reconciling conditions. Without conditions
// the object is Current once it exists.
func generic(obj map[string]any) Result {
	if c := condition(obj, "Stalled"); c != nil && c.status == "True" {
		return Result{Failed, orElse(c.message, c.reason)}
	}
	for _, typ := range []string{"Ready", "Available", "Synced"} {
		c := condition(obj, typ)
		if c == nil || c.status == "True" {
			continue
		}
		if c.status == "False" && failureReason(c.reason) {
			return Result{Failed, orElse(c.message, c.reason)}
		}
		return Result{InProgress, strings.TrimSuffix(typ+" is "+c.status+": "+c.message, ": ")}
	}
	if c := condition(obj, "Reconciling"); c != nil && c.status == "True" {
		return Result{InProgress, orElse(c.message, "reconciling")}
	}
	if c := condition(obj, "Ready"); c != nil {
		return Result{Current, c.message}
	}
	return Result{Current, ""}
}

// failureReason tells a failure from a wait by the condition's reason, the
// only hint generic conditions give: "Failed", "ReconcileError",
// "InstallFailed", "InvalidSpec" are failures; "Creating" is not.
func failureReason(reason string) bool {
	return strings.Contains(reason, "Fail") || strings.Contains(reason, "Error") || strings.HasPrefix(reason, "Invalid")
}

type cond struct{ status, reason, message string }

// condition returns status.conditions[type=typ], or nil.
func condition(obj map[string]any, typ string) *cond {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if t, _ := m["type"].(string); t == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return &cond{s, r, msg}
		}
	}
	return nil
}

func conditionIs(obj map[string]any, typ, status string) bool {
	c := condition(obj, typ)
	return c != nil && c.status == status
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
