package main

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// pageModel is what the dashboard shows, sent to the browser as JSON on
// every change: syncs → VidraResources → objects.
type pageModel struct {
	Revision    int64     `json:"revision"`
	GeneratedAt time.Time `json:"generatedAt"`
	Cluster     string    `json:"cluster"`
	// Loading is true until the syncs and VidraResources were first listed.
	Loading bool `json:"loading,omitempty"`
	// Problems are reads that failed (RBAC, missing CRDs), shown as a banner.
	Problems   []string       `json:"problems,omitempty"`
	Syncs      []syncView     `json:"syncs"`
	Standalone []resourceView `json:"standaloneResources"`
}

type syncView struct {
	Name         string          `json:"name"`
	State        string          `json:"state"`
	Reason       string          `json:"reason,omitempty"`
	Message      string          `json:"message,omitempty"`
	Suspended    bool            `json:"suspended"`
	Source       string          `json:"source"`
	Branch       string          `json:"branch"`
	TargetDate   string          `json:"targetDate,omitempty"`
	ArtifactName string          `json:"artifactName"`
	Destination  string          `json:"destination"`
	LastError    string          `json:"lastError,omitempty"`
	LastSyncTime *time.Time      `json:"lastSyncTime,omitempty"`
	LastChange   *time.Time      `json:"lastChange,omitempty"`
	Health       *healthSummary  `json:"health,omitempty"`
	Conditions   []conditionView `json:"conditions"`
	Events       []eventView     `json:"events"`
	Resources    []resourceView  `json:"resources"`
}

type resourceView struct {
	Name         string          `json:"name"`
	State        string          `json:"state"`
	Reason       string          `json:"reason,omitempty"`
	Message      string          `json:"message,omitempty"`
	Suspended    bool            `json:"suspended"`
	Artifact     string          `json:"artifact,omitempty"`
	Destination  string          `json:"destination"`
	LastError    string          `json:"lastError,omitempty"`
	LastSyncTime *time.Time      `json:"lastSyncTime,omitempty"`
	LastChange   *time.Time      `json:"lastChange,omitempty"`
	Health       *healthSummary  `json:"health,omitempty"`
	Conditions   []conditionView `json:"conditions"`
	Events       []eventView     `json:"events"`
	Objects      []objectView    `json:"objects"`
}

type objectView struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Server     string `json:"server,omitempty"`
	// State and Message are the plugin's own reading of the live object.
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
	// Health and HealthMessage are what the operator recorded in the
	// inventory (status.managedResources[].health); empty when it records
	// none.
	Health        string      `json:"health,omitempty"`
	HealthMessage string      `json:"healthMessage,omitempty"`
	LastChange    *time.Time  `json:"lastChange,omitempty"`
	Events        []eventView `json:"events"`
}

// healthSummary is status.health of a VidraResource or an InfrahubSync.
type healthSummary struct {
	Status     string `json:"status"`
	Current    int64  `json:"current"`
	InProgress int64  `json:"inProgress"`
	Failed     int64  `json:"failed"`
	Unknown    int64  `json:"unknown"`
}

type conditionView struct {
	Type               string     `json:"type"`
	Status             string     `json:"status"`
	Reason             string     `json:"reason,omitempty"`
	Message            string     `json:"message,omitempty"`
	LastTransitionTime *time.Time `json:"lastTransitionTime,omitempty"`
}

type eventView struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int64     `json:"count"`
	Time    time.Time `json:"time"`
}

// maxEvents is how many recent events each node shows.
const maxEvents = 5

// objectRef names an object the way events name what they regard.
type objectRef struct {
	Kind, Namespace, Name string
}

// liveObject is what the watches know of a managed object: the object, or
// the state to show when it cannot be read.
type liveObject struct {
	obj            *unstructured.Unstructured
	state, message string
}

// pageInputs are the watched objects a page is built from.
type pageInputs struct {
	syncs, resources []*unstructured.Unstructured
	// live returns a managed object of the local cluster.
	live func(e v1alpha1.ManagedResource) liveObject
	// events returns the events regarding an object, in any order.
	events   func(ref objectRef) []eventView
	problems []string
}

// buildPage turns the watched objects into the page. The CRs are read as
// unstructured objects so fields this plugin's API types do not know yet
// (health) are shown when the operator writes them.
func buildPage(in pageInputs) pageModel {
	page := pageModel{Problems: in.problems, Syncs: []syncView{}, Standalone: []resourceView{}}
	syncs := sortedByName(in.syncs)
	resources := sortedByName(in.resources)
	typedVRs := make([]v1alpha1.VidraResource, len(resources))
	for i, u := range resources {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &typedVRs[i]); err != nil {
			page.Problems = append(page.Problems, fmt.Sprintf("VidraResource %s: %v", u.GetName(), err))
		}
	}
	byName := map[string]*unstructured.Unstructured{}
	for _, u := range resources {
		byName[u.GetName()] = u
	}
	used := map[string]bool{}
	for _, su := range syncs {
		var s v1alpha1.InfrahubSync
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(su.Object, &s); err != nil {
			page.Problems = append(page.Problems, fmt.Sprintf("InfrahubSync %s: %v", su.GetName(), err))
			continue
		}
		state, reason, message := conditionState(s.Status.Conditions, s.Generation, s.Spec.Suspend)
		sv := syncView{
			Name:         s.Name,
			State:        state,
			Reason:       reason,
			Message:      message,
			Suspended:    s.Spec.Suspend,
			Source:       s.Spec.Source.InfrahubAPIURL,
			Branch:       branchOf(&s),
			TargetDate:   s.Spec.Source.TargetDate,
			ArtifactName: s.Spec.Source.ArtifactName,
			Destination:  destinationName(s.Spec.Destination.Server),
			LastError:    s.Status.LastError,
			LastSyncTime: timeOf(s.Status.LastSyncTime),
			LastChange:   lastChange(su),
			Health:       healthOf(su),
			Conditions:   conditionsOf(s.Status.Conditions),
			Events:       recentEvents(in.events, objectRef{Kind: "InfrahubSync", Name: s.Name}),
			Resources:    []resourceView{},
		}
		for _, vr := range ownedBy(&s, typedVRs) {
			used[vr.Name] = true
			sv.Resources = append(sv.Resources, resourceViewOf(byName[vr.Name], vr, in))
		}
		page.Syncs = append(page.Syncs, sv)
	}
	for i := range typedVRs {
		vr := &typedVRs[i]
		if !used[vr.Name] && metav1.GetControllerOf(vr) == nil {
			page.Standalone = append(page.Standalone, resourceViewOf(resources[i], vr, in))
		}
	}
	return page
}

func resourceViewOf(u *unstructured.Unstructured, vr *v1alpha1.VidraResource, in pageInputs) resourceView {
	state, reason, message := resourceState(vr)
	rv := resourceView{
		Name:         vr.Name,
		State:        state,
		Reason:       reason,
		Message:      message,
		Suspended:    vr.Spec.Suspend,
		Destination:  destinationName(vr.Spec.Destination.Server),
		LastError:    vr.Status.LastError,
		LastSyncTime: timeOf(vr.Status.LastSyncTime),
		LastChange:   lastChange(u),
		Health:       healthOf(u),
		Conditions:   conditionsOf(vr.Status.Conditions),
		Events:       recentEvents(in.events, objectRef{Kind: "VidraResource", Name: vr.Name}),
		Objects:      []objectView{},
	}
	if src := vr.Spec.Source; src != nil {
		rv.Artifact = src.ArtifactID
		if src.Target != "" && src.Target != src.ArtifactID {
			rv.Artifact += " (" + src.Target + ")"
		}
	}
	entries, _, _ := unstructured.NestedSlice(u.Object, "status", "managedResources")
	for i, e := range vr.Status.ManagedResources {
		ov := objectView{
			APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Server: e.Server,
			Events: []eventView{},
		}
		if i < len(entries) {
			if m, ok := entries[i].(map[string]any); ok {
				ov.Health, _ = m["health"].(string)
				ov.HealthMessage, _ = m["healthMessage"].(string)
			}
		}
		if e.Server != "" {
			ov.State, ov.Message = stateNotChecked, "on "+e.Server+"; only the local cluster is watched"
		} else {
			l := in.live(e)
			switch {
			case l.obj != nil:
				ov.State, ov.Message = objectHealth(l.obj)
				ov.LastChange = lastChange(l.obj)
			default:
				ov.State, ov.Message = l.state, l.message
			}
			ov.Events = recentEvents(in.events, objectRef{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
		}
		rv.Objects = append(rv.Objects, ov)
	}
	return rv
}

// healthOf reads status.health, which the operator writes from the
// health of the objects (absent from older operators).
func healthOf(u *unstructured.Unstructured) *healthSummary {
	m, found, _ := unstructured.NestedMap(u.Object, "status", "health")
	if !found {
		return nil
	}
	h := &healthSummary{}
	h.Status, _ = m["status"].(string)
	h.Current = toInt64(m["current"])
	h.InProgress = toInt64(m["inProgress"])
	h.Failed = toInt64(m["failed"])
	h.Unknown = toInt64(m["unknown"])
	return h
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}

func conditionsOf(conds []metav1.Condition) []conditionView {
	out := []conditionView{}
	for _, c := range conds {
		out = append(out, conditionView{
			Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			LastTransitionTime: timeOf(&c.LastTransitionTime),
		})
	}
	return out
}

// lastChange is the last time anyone wrote the object: the newest
// managedFields entry, else its creation.
func lastChange(u *unstructured.Unstructured) *time.Time {
	if u == nil {
		return nil
	}
	t := u.GetCreationTimestamp().Time
	for _, mf := range u.GetManagedFields() {
		if mf.Time != nil && mf.Time.After(t) {
			t = mf.Time.Time
		}
	}
	if t.IsZero() {
		return nil
	}
	return &t
}

// recentEvents returns the newest events first, at most maxEvents.
func recentEvents(events func(objectRef) []eventView, ref objectRef) []eventView {
	if events == nil {
		return []eventView{}
	}
	evs := append([]eventView{}, events(ref)...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.After(evs[j].Time) })
	if len(evs) > maxEvents {
		evs = evs[:maxEvents]
	}
	return evs
}

func sortedByName(in []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// eventFrom reads an events.k8s.io/v1 Event (core v1 events are served by
// that API too): what it regards and how it is shown.
func eventFrom(u *unstructured.Unstructured) (objectRef, eventView) {
	obj := u.Object
	str := func(fields ...string) string {
		s, _, _ := unstructured.NestedString(obj, fields...)
		return s
	}
	ref := objectRef{Kind: str("regarding", "kind"), Namespace: str("regarding", "namespace"), Name: str("regarding", "name")}
	ev := eventView{Type: str("type"), Reason: str("reason"), Message: str("note"), Count: 1}
	if n, found, _ := unstructured.NestedInt64(obj, "series", "count"); found && n > 0 {
		ev.Count = n
	} else if n, found, _ := unstructured.NestedInt64(obj, "deprecatedCount"); found && n > 0 {
		ev.Count = n
	}
	for _, field := range [][]string{{"series", "lastObservedTime"}, {"deprecatedLastTimestamp"}, {"eventTime"}, {"metadata", "creationTimestamp"}} {
		if s := str(field...); s != "" {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				ev.Time = t
				break
			}
		}
	}
	return ref, ev
}
