package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
)

const statusUsage = `Show InfrahubSyncs and GitSyncs as a tree: each sync, the artifacts Infrahub
listed (or the directories and files of the commit a GitSync read), the
VidraResource written for each and the objects it manages, with their
readiness, last error and age. Objects on the local cluster are read
live; objects on other clusters are listed from the inventory only.

Without a sync name every sync is shown, followed by VidraResources that no
sync wrote.

-o wide adds full checksums and every VidraResource's message, -o name
prints the resource names (as kubectl get -o name), -o json and -o yaml the
report as data. Both kinds are cluster-scoped, so a listing always covers
all of them; -A/--all-namespaces is accepted for kubectl's habits.

Usage:
  kubectl vidra status [sync] [-o text|wide|json|yaml|name] [--color auto|always|never]

Examples:
  kubectl vidra status
  kubectl vidra status -A -o name
  kubectl vidra status webservers -o json`

// statusReport is the output of status; -o json and -o yaml print it as is.
type statusReport struct {
	Syncs []syncReport `json:"syncs"`
	// Standalone lists VidraResources no sync wrote (only without a sync name).
	Standalone []resourceReport `json:"standaloneResources,omitempty"`
}

type syncReport struct {
	// Kind is GitSync for a GitSync, empty for an InfrahubSync.
	Kind                   string           `json:"kind,omitempty"`
	Name                   string           `json:"name"`
	State                  string           `json:"state"`
	Reason                 string           `json:"reason,omitempty"`
	Message                string           `json:"message,omitempty"`
	Suspended              bool             `json:"suspended"`
	InfrahubAPIURL         string           `json:"infrahubAPIURL"`
	Branch                 string           `json:"branch"`
	TargetDate             string           `json:"targetDate,omitempty"`
	ArtifactName           string           `json:"artifactName"`
	Destination            string           `json:"destination"`
	DestinationNamespace   string           `json:"destinationNamespace"`
	LastError              string           `json:"lastError,omitempty"`
	LastSyncTime           *time.Time       `json:"lastSyncTime,omitempty"`
	ReconcileRequestedAt   string           `json:"reconcileRequestedAt,omitempty"`
	LastHandledReconcileAt string           `json:"lastHandledReconcileAt,omitempty"`
	Generation             int64            `json:"generation"`
	ObservedGeneration     int64            `json:"observedGeneration"`
	CreationTimestamp      time.Time        `json:"creationTimestamp"`
	Artifacts              []artifactReport `json:"artifacts"`
	// Git is the repository side of a GitSync.
	Git *gitReport `json:"git,omitempty"`
	// Unlisted are the sync's VidraResources whose artifact is not in the
	// last listing (about to be pruned, or kept by the empty-listing guard).
	Unlisted []resourceReport `json:"unlistedResources,omitempty"`
}

type artifactReport struct {
	// Unit is Directory or File for a GitSync's units, empty for artifacts.
	Unit     string          `json:"unit,omitempty"`
	ID       string          `json:"id"`
	Name     string          `json:"name,omitempty"`
	Target   string          `json:"target,omitempty"`
	Status   string          `json:"status,omitempty"`
	Checksum string          `json:"checksum,omitempty"`
	Resource *resourceReport `json:"vidraResource,omitempty"`
}

type resourceReport struct {
	Name                   string         `json:"name"`
	State                  string         `json:"state"`
	Reason                 string         `json:"reason,omitempty"`
	Message                string         `json:"message,omitempty"`
	Suspended              bool           `json:"suspended"`
	Destination            string         `json:"destination"`
	LastError              string         `json:"lastError,omitempty"`
	LastSyncTime           *time.Time     `json:"lastSyncTime,omitempty"`
	LastHandledReconcileAt string         `json:"lastHandledReconcileAt,omitempty"`
	CreationTimestamp      time.Time      `json:"creationTimestamp"`
	ObjectCount            int            `json:"objectCount"`
	Objects                []objectReport `json:"objects"`
}

type objectReport struct {
	APIVersion        string     `json:"apiVersion"`
	Kind              string     `json:"kind"`
	Namespace         string     `json:"namespace,omitempty"`
	Name              string     `json:"name"`
	Server            string     `json:"server,omitempty"`
	State             string     `json:"state"`
	Message           string     `json:"message,omitempty"`
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`

	// gvr is the resource the inventory recorded; empty for old entries.
	gvr schema.GroupVersionResource
}

func runStatus(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("status", statusUsage)
	output := outputFlag(f, "text", "wide", "json", "yaml", "name")
	f.BoolP("all-namespaces", "A", false, "list everything (always the case: both kinds are cluster-scoped)")
	color := colorFlag(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("status", "status takes at most one sync name, got %d arguments", len(pos))
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	report, err := gatherStatus(ctx, c, name)
	if err != nil {
		return err
	}
	switch output.value {
	case "json":
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.stdout, string(data))
		return err
	case "yaml":
		data, err := yaml.Marshal(report)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(data)
		return err
	case "name":
		for _, n := range reportNames(report) {
			fmt.Fprintln(a.stdout, n)
		}
		return nil
	}
	if len(report.Syncs) == 0 && len(report.Standalone) == 0 {
		fmt.Fprintln(a.stdout, "No InfrahubSyncs or VidraResources found.")
		return nil
	}
	writeTree(a.stdout, statusTree(report, a.now(), painter{on: a.useColor(color.value), wide: output.value == "wide"}))
	return nil
}

// gatherStatus reads one sync (or all of them), their VidraResources and
// the live objects of the local cluster.
func gatherStatus(ctx context.Context, c *clients, name string) (*statusReport, error) {
	var syncs []v1alpha1.InfrahubSync
	gitSyncs, err := listGitSyncs(ctx, c, name)
	if err != nil {
		return nil, err
	}
	if name != "" && len(gitSyncs) == 0 {
		s, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("InfrahubSync %q not found", name)
		}
		if err != nil {
			return nil, fmt.Errorf("get InfrahubSync %s: %w", name, err)
		}
		syncs = []v1alpha1.InfrahubSync{*s}
	} else if name == "" {
		list, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list InfrahubSyncs: %w", err)
		}
		syncs = list.Items
		sort.Slice(syncs, func(i, j int) bool { return syncs[i].Name < syncs[j].Name })
	}
	vrOpts := metav1.ListOptions{}
	if name != "" {
		vrOpts.LabelSelector = v1alpha1.LabelSync + "=" + infrahubsync.SyncLabelValue(name)
	}
	vrList, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, vrOpts)
	if err != nil {
		return nil, fmt.Errorf("list VidraResources: %w", err)
	}
	vrs := vrList.Items
	sort.Slice(vrs, func(i, j int) bool { return vrs[i].Name < vrs[j].Name })

	report := &statusReport{Syncs: []syncReport{}}
	used := map[string]bool{}
	for i := range syncs {
		owned := ownedBy(&syncs[i], vrs)
		for _, vr := range owned {
			used[vr.Name] = true
		}
		report.Syncs = append(report.Syncs, syncStatus(&syncs[i], owned))
	}
	for i := range gitSyncs {
		owned := ownedByUID(gitSyncs[i].Name, gitSyncs[i].UID, vrs)
		for _, vr := range owned {
			used[vr.Name] = true
		}
		report.Syncs = append(report.Syncs, gitSyncStatus(&gitSyncs[i], owned))
	}
	if name == "" {
		for i := range vrs {
			if !used[vrs[i].Name] && metav1.GetControllerOf(&vrs[i]) == nil {
				report.Standalone = append(report.Standalone, resourceStatus(&vrs[i]))
			}
		}
	}
	fillObjects(ctx, c, report)
	return report, nil
}

// ownedBy returns the VidraResources a sync wrote: labelled with it and
// controlled by this very object, as the operator decides.
func ownedBy(sync *v1alpha1.InfrahubSync, vrs []v1alpha1.VidraResource) []*v1alpha1.VidraResource {
	label := infrahubsync.SyncLabelValue(sync.Name)
	var out []*v1alpha1.VidraResource
	for i := range vrs {
		vr := &vrs[i]
		if vr.Labels[v1alpha1.LabelSync] != label {
			continue
		}
		if ref := metav1.GetControllerOf(vr); ref != nil && ref.UID == sync.UID {
			out = append(out, vr)
		}
	}
	return out
}

func syncStatus(s *v1alpha1.InfrahubSync, owned []*v1alpha1.VidraResource) syncReport {
	state, reason, message := conditionState(s.Status.Conditions, s.Generation, s.Spec.Suspend)
	r := syncReport{
		Name:                   s.Name,
		State:                  state,
		Reason:                 reason,
		Message:                message,
		Suspended:              s.Spec.Suspend,
		InfrahubAPIURL:         s.Spec.Source.InfrahubAPIURL,
		Branch:                 branchOf(s),
		TargetDate:             s.Spec.Source.TargetDate,
		ArtifactName:           s.Spec.Source.ArtifactName,
		Destination:            destinationName(s.Spec.Destination.Server),
		DestinationNamespace:   namespaceOf(s.Spec.Destination),
		LastError:              s.Status.LastError,
		LastSyncTime:           timeOf(s.Status.LastSyncTime),
		ReconcileRequestedAt:   s.Annotations[v1alpha1.AnnotationReconcileRequestedAt],
		LastHandledReconcileAt: s.Status.LastHandledReconcileAt,
		Generation:             s.Generation,
		ObservedGeneration:     s.Status.ObservedGeneration,
		CreationTimestamp:      s.CreationTimestamp.Time,
		Artifacts:              []artifactReport{},
	}
	byName := map[string]*v1alpha1.VidraResource{}
	for _, vr := range owned {
		byName[vr.Name] = vr
	}
	shown := map[string]bool{}
	for _, a := range s.Status.Artifacts {
		ar := artifactReport{ID: a.ID, Name: a.Name, Target: a.Target, Status: a.Status, Checksum: a.Checksum}
		vrName := a.VidraResource
		if vrName == "" {
			vrName = infrahubsync.ResourceName(s.Name, a.ID)
		}
		if vr := byName[vrName]; vr != nil {
			rr := resourceStatus(vr)
			ar.Resource = &rr
			shown[vr.Name] = true
		}
		r.Artifacts = append(r.Artifacts, ar)
	}
	for _, vr := range owned {
		if !shown[vr.Name] {
			r.Unlisted = append(r.Unlisted, resourceStatus(vr))
		}
	}
	return r
}

// resourceState is a VidraResource's state in one word, with the reason
// and message behind it; the status tree and the dashboard both show it.
func resourceState(vr *v1alpha1.VidraResource) (state, reason, message string) {
	state, reason, message = conditionState(vr.Status.Conditions, vr.Generation, vr.Spec.Suspend)
	if vr.DeletionTimestamp != nil {
		state, message = stateTerminating, "being deleted; its objects are being removed"
	}
	return state, reason, message
}

func resourceStatus(vr *v1alpha1.VidraResource) resourceReport {
	state, reason, message := resourceState(vr)
	r := resourceReport{
		Name:                   vr.Name,
		State:                  state,
		Reason:                 reason,
		Message:                message,
		Suspended:              vr.Spec.Suspend,
		Destination:            destinationName(vr.Spec.Destination.Server),
		LastError:              vr.Status.LastError,
		LastSyncTime:           timeOf(vr.Status.LastSyncTime),
		LastHandledReconcileAt: vr.Status.LastHandledReconcileAt,
		CreationTimestamp:      vr.CreationTimestamp.Time,
		ObjectCount:            len(vr.Status.ManagedResources),
		Objects:                []objectReport{},
	}
	for _, e := range vr.Status.ManagedResources {
		o := objectReport{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Server: e.Server}
		o.gvr, _ = e.RecordedResource()
		r.Objects = append(r.Objects, o)
	}
	return r
}

// fillObjects reads the live objects of the local cluster, a few at a time.
func fillObjects(ctx context.Context, c *clients, report *statusReport) {
	var objs []*objectReport
	collect := func(rr *resourceReport) {
		for i := range rr.Objects {
			objs = append(objs, &rr.Objects[i])
		}
	}
	for i := range report.Syncs {
		for j := range report.Syncs[i].Artifacts {
			if rr := report.Syncs[i].Artifacts[j].Resource; rr != nil {
				collect(rr)
			}
		}
		for j := range report.Syncs[i].Unlisted {
			collect(&report.Syncs[i].Unlisted[j])
		}
	}
	for i := range report.Standalone {
		collect(&report.Standalone[i])
	}
	var mapper *cluster.Mapper // only for inventory entries without a resource
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, o := range objs {
		if o.Server != "" {
			o.State, o.Message = stateNotChecked, "on "+o.Server+"; not read by this command"
			continue
		}
		if o.gvr.Resource == "" {
			if mapper == nil {
				mapper = cluster.NewMapper(c.kube.Discovery())
			}
			gv, err := schema.ParseGroupVersion(o.APIVersion)
			if err != nil {
				o.State, o.Message = stateUnknown, fmt.Sprintf("apiVersion %q is invalid", o.APIVersion)
				continue
			}
			mapping, err := mapper.Mapping(ctx, gv.WithKind(o.Kind))
			if err != nil {
				o.State, o.Message = stateUnknown, oneLine(err.Error())
				continue
			}
			o.gvr = mapping.Resource
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(o *objectReport) {
			defer func() { <-sem; wg.Done() }()
			o.State, o.Message, o.CreationTimestamp = liveState(ctx, c.dynamic, o)
		}(o)
	}
	wg.Wait()
}

// liveState reads one object and judges its health.
func liveState(ctx context.Context, client dynamic.Interface, o *objectReport) (string, string, *time.Time) {
	var ri dynamic.ResourceInterface = client.Resource(o.gvr)
	if o.Namespace != "" {
		ri = client.Resource(o.gvr).Namespace(o.Namespace)
	}
	live, err := ri.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return stateMissing, "not found in the cluster", nil
	}
	if err != nil {
		return stateUnknown, oneLine(err.Error()), nil
	}
	state, msg := objectHealth(live)
	t := live.GetCreationTimestamp().Time
	return state, msg, &t
}

func branchOf(s *v1alpha1.InfrahubSync) string {
	if s.Spec.Source.TargetBranch == "" {
		return "main"
	}
	return s.Spec.Source.TargetBranch
}

func namespaceOf(d v1alpha1.Destination) string {
	if d.Namespace == "" {
		return metav1.NamespaceDefault
	}
	return d.Namespace
}

func destinationName(server string) string {
	if cluster.IsLocal(server) {
		return "local"
	}
	return server
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// The prefixes of kubectl's -o name.
const (
	syncResourceName     = "infrahubsync.infrahub.operators.com/"
	gitSyncResourceName  = "gitsync.infrahub.operators.com/"
	resourceResourceName = "vidraresource.infrahub.operators.com/"
)

// reportNames lists the report's objects as kubectl get -o name does:
// the syncs, then their VidraResources, then those without a sync.
func reportNames(r *statusReport) []string {
	const syncPrefix, vrPrefix = syncResourceName, resourceResourceName
	var out []string
	for _, s := range r.Syncs {
		if s.Kind == kindGitSync {
			out = append(out, gitSyncResourceName+s.Name)
			continue
		}
		out = append(out, syncPrefix+s.Name)
	}
	for _, s := range r.Syncs {
		for _, a := range s.Artifacts {
			if a.Resource != nil {
				out = append(out, vrPrefix+a.Resource.Name)
			}
		}
		for _, vr := range s.Unlisted {
			out = append(out, vrPrefix+vr.Name)
		}
	}
	for _, vr := range r.Standalone {
		out = append(out, vrPrefix+vr.Name)
	}
	return out
}
