package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
	"github.com/vidra-operator/vidra/infrahub"
)

const diffUsage = `Preview what an InfrahubSync would change in its destination cluster if it
read Infrahub now: on its own branch and point in time, or on another branch
(--branch, e.g. one not merged yet) or time (--at). Nothing is changed: every
object is sent to the API server as a server-side apply dry run (field
manager vidra, forced, as the operator applies), so defaults, admission and
validation are those of the real cluster.

The artifacts are read from Infrahub directly, with the sync's URL and the
credentials the operator would use (Secrets in --operator-namespace). Each
changed object is shown as a unified diff of its YAML without the fields the
server manages (managedFields, resourceVersion, uid, generation,
creationTimestamp, status). Objects that would be pruned (in a
VidraResource's inventory but no longer in any artifact) are shown as
deletions, new objects as additions. Secret values are masked.

Exit status: 0 when nothing would change, 1 when something would, 2 when
the preview failed (also when some objects could not be previewed).

Usage:
  kubectl vidra diff <sync> [--branch B] [--at T] [-U N] [--color auto|always|never]

Examples:
  kubectl vidra diff webservers
  kubectl vidra diff webservers --branch feature-new-vlan
  kubectl vidra diff webservers --at 2026-08-20T10:00:00Z`

// runDiff runs diff with kubectl diff's exit codes: 0 no changes, 1
// changes, 2 a usage error, 3 any other failure.
func runDiff(ctx context.Context, a *app, args []string) error {
	err := diffCommand(ctx, a, args)
	var ec *exitCodeError
	var ue *usageError
	if err == nil || errors.As(err, &ec) || errors.As(err, &ue) {
		return err
	}
	return &exitCodeError{code: exitDiffError, err: err}
}

func diffCommand(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("diff", diffUsage)
	branch := f.String("branch", "", "Infrahub branch to preview (default: the sync's targetBranch)")
	at := f.String("at", "", "point in time to preview, in any form targetDate accepts; \"now\" for the present (default: the sync's targetDate)")
	unified := f.IntP("unified", "U", 3, "lines of context around each change")
	queryName := f.String("query-name", "", "stored query to list artifacts with when the sync names none (the operator's --query-name)")
	color := colorFlag(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	ns := a.kube.namespace()
	if len(pos) != 1 {
		return usagef("diff", "diff needs exactly one sync name")
	}
	if *unified < 0 {
		return usagef("diff", "--unified must not be negative")
	}
	if f.isSet("branch") && strings.TrimSpace(*branch) == "" {
		return usagef("diff", "--branch must not be empty")
	}
	if f.isSet("at") && *at != "now" {
		if err := infrahub.ValidateAt(*at); err != nil {
			return usagef("diff", "--at: %v", err)
		}
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	sync, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, pos[0], metav1.GetOptions{})
	if err != nil {
		return syncGetError(pos[0], err)
	}
	p := &preview{
		ctx:     ctx,
		a:       a,
		c:       c,
		sync:    sync,
		secrets: &secretReader{ctx: ctx, kube: c.kube, namespace: ns},
		branch:  branchOf(sync),
		at:      sync.Spec.Source.TargetDate,
	}
	if f.isSet("branch") {
		p.branch = *branch
	}
	if f.isSet("at") {
		p.at = *at
		if p.at == "now" {
			p.at = ""
		}
	}
	if err := p.run(*queryName); err != nil {
		return err
	}
	for _, n := range p.notes {
		fmt.Fprintln(a.stderr, "note: "+n)
	}
	for _, n := range p.problems {
		fmt.Fprintln(a.stderr, "warning: "+n)
	}
	sortChanges(p.changes)
	to := p.branch
	if p.at != "" {
		to += "@" + p.resolvedAt
	}
	sum, err := renderDiff(a.stdout, p.changes, "live", to, *unified, painter{on: a.useColor(color.value)})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, summaryLine(sum, p.unchanged+len(p.changes)-sum.total(), to))
	if len(p.problems) > 0 {
		return fmt.Errorf("the preview is incomplete: %s (see the warnings above)", plural(len(p.problems), "problem"))
	}
	if sum.total() > 0 {
		return &exitCodeError{code: exitChanges}
	}
	return nil
}

// preview computes what a sync would change.
type preview struct {
	ctx     context.Context
	a       *app
	c       *clients
	sync    *v1alpha1.InfrahubSync
	secrets *secretReader
	branch  string
	at      string

	resolvedAt string
	clusters   *cluster.Manager
	target     *cluster.Target

	changes   []objectChange
	unchanged int
	notes     []string
	problems  []string

	// desired holds every object some artifact declares, by entry key.
	desired map[string]bool
	// kept marks VidraResources the operator would leave as they are.
	kept map[string]bool
	// uids are the UIDs of the VidraResources that exist, by name.
	uids map[string]types.UID
}

// alive follows the operator: an owner counts while a VidraResource of its
// name exists, and, when the record holds its UID, only that very one.
func (p *preview) alive(name string, uid types.UID) bool {
	have, ok := p.uids[name]
	return ok && (uid == "" || uid == have)
}

func (p *preview) notef(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}
func (p *preview) problemf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *preview) run(queryName string) error {
	sync := p.sync
	if sync.Spec.Suspend {
		p.notef("InfrahubSync %s is suspended: this is what would change once it is resumed", sync.Name)
	}
	cfg, err := infrahubConfig(sync, p.secrets, queryName)
	if err != nil {
		return err
	}
	client, err := infrahub.New(cfg)
	if err != nil {
		return fmt.Errorf("Infrahub client for %s: %w", sync.Spec.Source.InfrahubAPIURL, err)
	}
	// "main" (the API's default) stands for Infrahub's default branch,
	// whatever its name, as in the operator.
	if resolved, err := client.ResolveBranch(p.ctx, p.branch); err == nil {
		p.branch = resolved
	}
	opts, err := infrahub.ListOptions{Name: sync.Spec.Source.ArtifactName, Branch: p.branch, At: p.at}.Resolve(p.a.now())
	if err != nil {
		return fmt.Errorf("point in time %q: %w", p.at, err)
	}
	p.resolvedAt = opts.At
	artifacts, err := client.ListArtifacts(p.ctx, opts)
	if err != nil {
		if infrahub.IsBranchNotFound(err) {
			return fmt.Errorf("Infrahub has no branch %q: %w", p.branch, err)
		}
		return fmt.Errorf("list artifacts %q on branch %s: %w", opts.Name, p.branch, err)
	}
	artifacts = dedupeArtifacts(artifacts)

	vrList, err := p.c.vidra.InfrahubV1alpha1().VidraResources().List(p.ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list VidraResources: %w", err)
	}
	existing := map[string]bool{}
	p.uids = map[string]types.UID{}
	for _, vr := range vrList.Items {
		existing[vr.Name] = true
		p.uids[vr.Name] = vr.UID
	}
	owned := ownedBy(sync, vrList.Items)
	byArtifact := map[string]*v1alpha1.VidraResource{}
	for _, vr := range owned {
		if vr.Spec.Source != nil {
			byArtifact[vr.Spec.Source.ArtifactID] = vr
		}
	}

	p.clusters, err = cluster.NewManager(cluster.Options{Local: p.c.config, Secrets: p.secrets, Namespace: p.secrets.namespace})
	if err != nil {
		return err
	}
	defer p.clusters.Stop()
	p.target, err = p.clusters.Target(p.ctx, sync.Spec.Destination)
	if err != nil {
		return fmt.Errorf("destination %s: %w", destinationName(sync.Spec.Destination.Server), err)
	}

	// First everything every artifact declares, so an object moving from
	// one artifact to another, or a namespace created by the same change,
	// is known before objects are compared.
	p.desired, p.kept = map[string]bool{}, map[string]bool{}
	declared := map[string]map[string]bool{}
	listed := map[string]bool{}
	type batch struct {
		vrName string
		objs   []wanted
	}
	var batches []batch
	for _, art := range artifacts {
		listed[art.ID] = true
		vrName := infrahubsync.ResourceName(sync.Name, art.ID)
		if vr := byArtifact[art.ID]; vr != nil {
			vrName = vr.Name
		}
		objs, ok := p.desiredObjects(client, opts, art, vrName, byArtifact[art.ID] != nil)
		if !ok {
			p.kept[vrName] = true
			continue
		}
		declared[vrName] = map[string]bool{}
		for _, o := range objs {
			k := entryKeyOf(p.target.Server, o.obj)
			declared[vrName][k] = true
			p.desired[k] = true
		}
		batches = append(batches, batch{vrName, objs})
	}
	for _, b := range batches {
		for _, o := range b.objs {
			p.compare(o, b.vrName)
		}
	}
	p.removals(owned, listed, declared, existing, len(artifacts))
	return nil
}

func dedupeArtifacts(in []infrahub.Artifact) []infrahub.Artifact {
	seen := map[string]bool{}
	var out []infrahub.Artifact
	for _, a := range in {
		if !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	return out
}

func artifactName(a infrahub.Artifact) string {
	if a.TargetLabel != "" && a.TargetLabel != a.ID {
		return fmt.Sprintf("artifact %s (%s)", a.ID, a.TargetLabel)
	}
	return "artifact " + a.ID
}

// wanted is one object an artifact declares, resolved on the destination.
type wanted struct {
	obj     *unstructured.Unstructured
	mapping *meta.RESTMapping // nil while the kind's CRD is not served yet
}

// desiredObjects downloads and resolves an artifact's objects as the
// operator would. ok is false when the operator would keep what its
// VidraResource applied before (artifact not ready, download or manifest
// failed); the reason is recorded.
func (p *preview) desiredObjects(client *infrahub.Client, opts infrahub.ListOptions, art infrahub.Artifact, vrName string, exists bool) ([]wanted, bool) {
	label := artifactName(art)
	if !art.HasContent() { // as the operator: Ready, or Error with its last good content
		if exists {
			p.notef("%s is %s in Infrahub: the objects of VidraResource %s would be kept as they are", label, orDash(art.Status), vrName)
		} else {
			p.notef("%s is %s in Infrahub: nothing would be applied for it yet", label, orDash(art.Status))
		}
		return nil, false
	}
	content, err := client.FetchContent(p.ctx, art, opts)
	if err != nil {
		p.problemf("download %s: %v", label, err)
		return nil, false
	}
	if strings.TrimSpace(string(content)) == "" {
		p.notef("%s is empty: the operator would keep what was applied before", label)
		return nil, false
	}
	docs, err := manifest.Parse(content)
	if err != nil {
		p.problemf("%s is not a valid manifest, so nothing of it would be applied or pruned: %s", label, oneLine(err.Error()))
		return nil, false
	}
	if len(docs) == 0 {
		p.notef("%s holds no objects: nothing of it would be applied or pruned", label)
		return nil, false
	}
	manifest.Sort(docs)
	crdKinds := map[schema.GroupKind]bool{}
	for _, d := range docs {
		if d.Object.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			group, _, _ := unstructured.NestedString(d.Object.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(d.Object.Object, "spec", "names", "kind")
			crdKinds[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	defaultNS := namespaceOf(p.sync.Spec.Destination)
	var out []wanted
	var withNS []manifest.Document
	for _, d := range docs {
		obj := d.Object.DeepCopy()
		gvk := obj.GroupVersionKind()
		mapping, err := p.target.Mapper.Mapping(p.ctx, gvk)
		var noKind *cluster.NoKindError
		switch {
		case errors.As(err, &noKind) && crdKinds[gvk.GroupKind()]:
			if obj.GetNamespace() == "" {
				obj.SetNamespace(defaultNS) // a guess: the CRD's scope is not known yet
			}
		case err != nil:
			p.problemf("%s, %s: %s", label, manifest.SecretSafe(obj), oneLine(err.Error()))
			continue
		case mapping.Scope.Name() == meta.RESTScopeNameNamespace:
			if obj.GetNamespace() == "" {
				obj.SetNamespace(defaultNS)
			}
		default:
			obj.SetNamespace("")
		}
		out = append(out, wanted{obj: obj, mapping: mapping})
		doc := d
		doc.Object = obj
		withNS = append(withNS, doc)
	}
	if err := manifest.Duplicates(withNS); err != nil {
		p.problemf("%s declares an object twice, so nothing of it would be applied or pruned: %s", label, oneLine(err.Error()))
		return nil, false
	}
	return out, true
}

// compare previews one object: the operator's ownership rules first, then
// a server-side apply dry run unless the live object already is as declared.
func (p *preview) compare(w wanted, vrName string) {
	obj := w.obj
	key := manifest.KeyOf(obj)
	change := objectChange{key: key, server: p.target.Server}
	hash := manifest.ContentHash(obj)
	if w.mapping == nil {
		// Its CRD comes with this very manifest: it can only be shown as declared.
		ownership.MarkRecord(obj, ownership.Record{vrName: {UID: p.uids[vrName], Hash: hash}}, hash)
		change.after = obj
		p.notef("%s: its kind is defined by a CRD that is not installed yet; shown as declared, without server defaults", manifest.SecretSafe(obj))
		p.changes = append(p.changes, change)
		return
	}
	gvr := w.mapping.Resource
	client := resourceClient(p.target.Client, gvr, obj.GetNamespace())
	live, err := client.Get(p.ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		p.problemf("read %s: %s", manifest.SecretSafe(obj), oneLine(err.Error()))
		return
	}
	d := ownership.Decide(live, ownership.Owner{Name: vrName, UID: p.uids[vrName]}, hash, p.sync.Spec.AdoptExisting, p.alive)
	switch d.Verdict {
	case ownership.NotOwned:
		p.notef("%s exists and is not managed by Vidra: the operator would leave it alone (adoptExisting is off)", manifest.SecretSafe(obj))
		p.unchanged++
		return
	case ownership.Conflict:
		p.notef("%s is declared differently by VidraResource %s: the operator would leave it as they declared it",
			manifest.SecretSafe(obj), strings.Join(d.Disagreeing, ", "))
		p.unchanged++
		return
	}
	ownership.MarkRecord(obj, d.Record, hash)
	if live != nil && ownership.ReadRecord(live).Equal(d.Record) &&
		live.GetAnnotations()[v1alpha1.AnnotationContentHash] == hash && manifest.Equivalent(obj, live) {
		p.unchanged++
		return
	}
	result, err := client.Apply(p.ctx, obj.GetName(), obj, metav1.ApplyOptions{
		FieldManager: v1alpha1.FieldManager,
		Force:        true,
		DryRun:       []string{metav1.DryRunAll},
	})
	if err != nil {
		if live == nil && apierrors.IsNotFound(err) && obj.GetNamespace() != "" && p.desired[namespaceKey(p.target.Server, obj.GetNamespace())] {
			// Its namespace comes with the same change; the server cannot
			// dry-run into a namespace that does not exist yet.
			change.after = obj
			p.notef("%s: its namespace is created by this change too; shown as declared, without server defaults", manifest.SecretSafe(obj))
			p.changes = append(p.changes, change)
			return
		}
		p.problemf("dry run of %s: %s", manifest.SecretSafe(obj), oneLine(err.Error()))
		return
	}
	change.before, change.after = live, result
	p.changes = append(p.changes, change)
}

// removals adds the objects the operator would prune: inventory entries
// of the sync's VidraResources that no artifact declares any more.
func (p *preview) removals(owned []*v1alpha1.VidraResource, listed map[string]bool, declared map[string]map[string]bool, existing map[string]bool, listedCount int) {
	sync := p.sync
	prune := sync.Spec.Prune == nil || *sync.Spec.Prune
	emptyGuard := listedCount == 0 && len(owned) > 0 && !sync.Spec.AllowEmpty
	if emptyGuard {
		p.notef("Infrahub lists no artifacts named %q on branch %s: the operator would keep every VidraResource (allowEmpty is off)", sync.Spec.Source.ArtifactName, p.branch)
		return
	}
	sorted := append([]*v1alpha1.VidraResource(nil), owned...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, vr := range sorted {
		if p.kept[vr.Name] {
			continue
		}
		gone := vr.Spec.Source == nil || !listed[vr.Spec.Source.ArtifactID]
		var stale []v1alpha1.ManagedResource
		for _, e := range vr.Status.ManagedResources {
			if gone || !declared[vr.Name][entryKey(e)] {
				stale = append(stale, e)
			}
		}
		if len(stale) == 0 {
			continue
		}
		switch {
		case !prune:
			p.notef("%s of VidraResource %s would be left in place: prune is off", plural(len(stale), "object"), vr.Name)
			continue
		case gone && vr.Annotations[v1alpha1.AnnotationDeletionPolicy] == v1alpha1.DeletionPolicyOrphan:
			p.notef("VidraResource %s would be removed but its objects orphaned (%s=%s)", vr.Name, v1alpha1.AnnotationDeletionPolicy, v1alpha1.DeletionPolicyOrphan)
			continue
		}
		for _, e := range stale {
			if p.desired[entryKey(e)] {
				continue // moves to another VidraResource; its apply is shown
			}
			p.removal(vr, e, existing)
		}
	}
}

func (p *preview) removal(vr *v1alpha1.VidraResource, e v1alpha1.ManagedResource, existing map[string]bool) {
	what := describeEntry(e)
	target := p.target
	if e.Server != target.Server {
		dest := v1alpha1.Destination{Server: e.Server, ServiceAccount: vr.Spec.Destination.ServiceAccount}
		if prev := vr.Status.AppliedDestination; prev != nil && cluster.NormalizeServer(prev.Server) == e.Server {
			dest = *prev
		}
		t, err := p.clusters.Target(p.ctx, dest)
		if err != nil {
			p.problemf("%s on %s would be pruned but cannot be read: %s", what, e.Server, oneLine(err.Error()))
			return
		}
		target = t
	}
	gvr, err := entryResource(p.ctx, target, e)
	if err != nil {
		p.problemf("%s would be pruned but cannot be read: %s", what, oneLine(err.Error()))
		return
	}
	live, err := resourceClient(target.Client, gvr, e.Namespace).Get(p.ctx, e.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		p.problemf("%s would be pruned but cannot be read: %s", what, oneLine(err.Error()))
		return
	}
	rec := ownership.ReadRecord(live)
	if _, mine := rec[vr.Name]; !ownership.Managed(live) || !mine {
		return
	}
	var others []string
	for _, o := range rec.Without(vr.Name).Names() {
		if p.alive(o, rec[o].UID) {
			others = append(others, o)
		}
	}
	if len(others) > 0 {
		p.notef("%s leaves VidraResource %s but stays: still declared by %s", what, vr.Name, strings.Join(others, ", "))
		return
	}
	p.changes = append(p.changes, objectChange{key: manifest.KeyOf(live), server: e.Server, before: live})
}

// entryResource returns an inventory entry's resource, from the entry when
// it recorded one, else through discovery.
func entryResource(ctx context.Context, target *cluster.Target, e v1alpha1.ManagedResource) (schema.GroupVersionResource, error) {
	gv, err := schema.ParseGroupVersion(e.APIVersion)
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("apiVersion %q: %w", e.APIVersion, err)
	}
	if gvr, ok := e.RecordedResource(); ok {
		return gvr, nil
	}
	mapping, err := target.Mapper.Mapping(ctx, gv.WithKind(e.Kind))
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return mapping.Resource, nil
}

func resourceClient(client dynamic.Interface, gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return client.Resource(gvr)
	}
	return client.Resource(gvr).Namespace(namespace)
}

// entryKey identifies an inventory entry regardless of API version, as the
// operator does.
func entryKey(e v1alpha1.ManagedResource) string {
	return e.Server + "|" + e.Group + "|" + e.Kind + "|" + e.Namespace + "|" + e.Name
}

func entryKeyOf(server string, u *unstructured.Unstructured) string {
	k := manifest.KeyOf(u)
	return server + "|" + k.Group + "|" + k.Kind + "|" + k.Namespace + "|" + k.Name
}

func namespaceKey(server, namespace string) string {
	return server + "||Namespace||" + namespace
}

func describeEntry(e v1alpha1.ManagedResource) string {
	kind := e.Kind
	if e.Group != "" {
		kind += "." + e.Group
	}
	if e.Namespace == "" {
		return kind + " " + e.Name
	}
	return kind + " " + e.Namespace + "/" + e.Name
}
