package main

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// The operator's ownership rules, restated so diff marks objects exactly
// as an apply would (the markers are part of what server-side apply owns).

// managedByVidra reports whether an object carries Vidra's marker.
func managedByVidra(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()[v1alpha1.AnnotationManagedBy] == v1alpha1.ManagedByVidra ||
		u.GetLabels()[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByVidra
}

// ownersOf returns the VidraResources declaring an object: sorted, without
// duplicates or blanks.
func ownersOf(u *unstructured.Unstructured) []string {
	return normalizeOwners(strings.Split(u.GetAnnotations()[v1alpha1.AnnotationOwnedBy], ","))
}

func normalizeOwners(names []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func hasOwner(owners []string, name string) bool {
	for _, o := range owners {
		if o == name {
			return true
		}
	}
	return false
}

func withOwner(owners []string, name string) []string {
	if hasOwner(owners, name) {
		return owners
	}
	return normalizeOwners(append(append([]string{}, owners...), name))
}

func withoutOwner(owners []string, name string) []string {
	out := make([]string, 0, len(owners))
	for _, o := range owners {
		if o != name {
			out = append(out, o)
		}
	}
	return out
}

func sameOwners(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// markOwned adds Vidra's markers to an object about to be applied.
func markOwned(u *unstructured.Unstructured, owners []string, contentHash string) {
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByVidra
	u.SetLabels(labels)
	annotations := u.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationManagedBy] = v1alpha1.ManagedByVidra
	annotations[v1alpha1.AnnotationOwnedBy] = strings.Join(owners, ",")
	annotations[v1alpha1.AnnotationContentHash] = contentHash
	u.SetAnnotations(annotations)
}
