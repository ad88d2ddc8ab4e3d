package main

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// syncObject is an InfrahubSync or a GitSync as the commands acting on a
// sync by name (reconcile, suspend, resume) see it.
type syncObject struct {
	Kind        string
	Name        string
	UID         types.UID
	Generation  int64
	Suspend     bool
	LastHandled string
	Conditions  []metav1.Condition
}

const (
	kindInfrahubSync = "InfrahubSync"
	kindGitSync      = "GitSync"
)

// splitSyncArg reads "NAME", or "KIND/NAME" with KIND a kind, resource or
// short name of InfrahubSync or GitSync (as kubectl accepts them).
func splitSyncArg(arg string) (kind, name string, err error) {
	prefix, rest, ok := strings.Cut(arg, "/")
	if !ok {
		return "", arg, nil
	}
	switch strings.ToLower(strings.TrimSuffix(prefix, "."+v1alpha1.SchemeGroupVersion.Group)) {
	case "infrahubsync", "infrahubsyncs", "ihs", "ihsync":
		return kindInfrahubSync, rest, nil
	case "gitsync", "gitsyncs", "gs":
		return kindGitSync, rest, nil
	}
	return "", "", fmt.Errorf("%q: expected NAME, infrahubsync/NAME or gitsync/NAME", arg)
}

// getSync reads the sync arg names: an InfrahubSync, else a GitSync of
// that name, unless arg names the kind.
func getSync(ctx context.Context, c *clients, arg string) (*syncObject, error) {
	kind, name, err := splitSyncArg(arg)
	if err != nil {
		return nil, err
	}
	if kind != kindGitSync {
		s, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			return &syncObject{Kind: kindInfrahubSync, Name: name, UID: s.UID, Generation: s.Generation, Suspend: s.Spec.Suspend,
				LastHandled: s.Status.LastHandledReconcileAt, Conditions: s.Status.Conditions}, nil
		case kind == kindInfrahubSync || !apierrors.IsNotFound(err):
			return nil, syncGetError(name, err)
		}
	}
	g, err := c.vidra.InfrahubV1alpha1().GitSyncs().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && kind == "" {
			return nil, fmt.Errorf("InfrahubSync or GitSync %q not found", name)
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("GitSync %q not found", name)
		}
		return nil, fmt.Errorf("GitSync %s: %w", name, err)
	}
	return &syncObject{Kind: kindGitSync, Name: name, UID: g.UID, Generation: g.Generation, Suspend: g.Spec.Suspend,
		LastHandled: g.Status.LastHandledReconcileAt, Conditions: g.Status.Conditions}, nil
}

// patch applies a merge patch to the sync.
func (s *syncObject) patch(ctx context.Context, c *clients, patch []byte) error {
	var err error
	if s.Kind == kindGitSync {
		_, err = c.vidra.InfrahubV1alpha1().GitSyncs().Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	} else {
		_, err = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", s.Kind, s.Name, err)
	}
	return nil
}

// resourceName is the sync as kubectl names it with -o name.
func (s *syncObject) resourceName() string {
	return strings.ToLower(s.Kind) + "." + v1alpha1.SchemeGroupVersion.Group + "/" + s.Name
}

func (s *syncObject) String() string { return s.Kind + " " + s.Name }
