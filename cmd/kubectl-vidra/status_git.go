package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
)

// gitReport is the repository side of a GitSync in the status report.
type gitReport struct {
	URL           string   `json:"url"`
	Ref           string   `json:"ref"`
	Paths         []string `json:"paths"`
	Layout        string   `json:"layout"`
	Commit        string   `json:"commit,omitempty"`
	CommitMessage string   `json:"commitMessage,omitempty"`
}

// listGitSyncs reads the GitSync name, or every GitSync when name is "".
// A name that is no GitSync gives none. A cluster without the GitSync CRD
// has none.
func listGitSyncs(ctx context.Context, c *clients, name string) ([]v1alpha1.GitSync, error) {
	if name != "" {
		g, err := c.vidra.InfrahubV1alpha1().GitSyncs().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("get GitSync %s: %w", name, err)
		}
		return []v1alpha1.GitSync{*g}, nil
	}
	list, err := c.vidra.InfrahubV1alpha1().GitSyncs().List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list GitSyncs: %w", err)
	}
	out := list.Items
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ownedByUID returns the VidraResources labelled with the sync's name and
// controlled by the object of uid.
func ownedByUID(name string, uid types.UID, vrs []v1alpha1.VidraResource) []*v1alpha1.VidraResource {
	label := infrahubsync.SyncLabelValue(name)
	var out []*v1alpha1.VidraResource
	for i := range vrs {
		vr := &vrs[i]
		if vr.Labels[v1alpha1.LabelSync] != label {
			continue
		}
		if ref := metav1.GetControllerOf(vr); ref != nil && ref.UID == uid {
			out = append(out, vr)
		}
	}
	return out
}

func gitRefText(r v1alpha1.GitRef) string {
	switch {
	case r.Branch != "":
		return "branch " + r.Branch
	case r.Tag != "":
		return "tag " + r.Tag
	case r.SemVer != "":
		return "semver " + r.SemVer
	}
	return "commit " + r.Commit
}

func gitSyncStatus(g *v1alpha1.GitSync, owned []*v1alpha1.VidraResource) syncReport {
	state, reason, message := conditionState(g.Status.Conditions, g.Generation, g.Spec.Suspend)
	layout := g.Spec.Layout
	if layout == "" {
		layout = v1alpha1.GitLayoutDirectory
	}
	r := syncReport{
		Kind:                   kindGitSync,
		Name:                   g.Name,
		State:                  state,
		Reason:                 reason,
		Message:                message,
		Suspended:              g.Spec.Suspend,
		Destination:            destinationName(g.Spec.Destination.Server),
		DestinationNamespace:   namespaceOf(g.Spec.Destination),
		LastError:              g.Status.LastError,
		LastSyncTime:           timeOf(g.Status.LastSyncTime),
		ReconcileRequestedAt:   g.Annotations[v1alpha1.AnnotationReconcileRequestedAt],
		LastHandledReconcileAt: g.Status.LastHandledReconcileAt,
		Generation:             g.Generation,
		ObservedGeneration:     g.Status.ObservedGeneration,
		CreationTimestamp:      g.CreationTimestamp.Time,
		Artifacts:              []artifactReport{},
		Git: &gitReport{URL: g.Spec.URL, Ref: gitRefText(g.Spec.Ref), Paths: g.Spec.Paths, Layout: layout,
			Commit: g.Status.Commit, CommitMessage: g.Status.CommitMessage},
	}
	byName := map[string]*v1alpha1.VidraResource{}
	for _, vr := range owned {
		byName[vr.Name] = vr
	}
	shown := map[string]bool{}
	for _, u := range g.Status.Units {
		ar := artifactReport{Unit: layout, ID: u.Path, Checksum: u.Checksum}
		vrName := u.VidraResource
		if vrName == "" {
			vrName = infrahubsync.ResourceName(g.Name, u.Path)
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

// gitSource is the source line of a GitSync in the tree.
func gitSource(g *gitReport) string {
	s := fmt.Sprintf("source: %s %s paths %s", g.URL, g.Ref, strings.Join(g.Paths, ", "))
	if g.Commit != "" {
		s += " at " + short(g.Commit, 12)
		if g.CommitMessage != "" {
			s += fmt.Sprintf(" %q", g.CommitMessage)
		}
	}
	return s
}
