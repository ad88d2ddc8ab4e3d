// Package ownership holds the markers Vidra puts on the objects it manages
// and the rules for the list of VidraResources that declare each one. The
// controller and the kubectl plugin's diff both follow exactly these.
package ownership

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// Managed reports whether an object carries Vidra's marker. Objects
// without it were not created by Vidra and are never changed or deleted
// unless a VidraResource explicitly adopts them.
func Managed(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()[v1alpha1.AnnotationManagedBy] == v1alpha1.ManagedByVidra ||
		u.GetLabels()[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByVidra
}

// Owners returns the VidraResources an object is declared by: sorted,
// without duplicates or blanks, in either record format (the earlier
// operator let the list grow with repeats).
func Owners(u *unstructured.Unstructured) []string {
	return ReadRecord(u).Names()
}

// Normalize sorts names and drops blanks and repeats.
func Normalize(names []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether name is in a normalized list.
func Has(owners []string, name string) bool {
	i := sort.SearchStrings(owners, name)
	return i < len(owners) && owners[i] == name
}

// With returns owners plus name.
func With(owners []string, name string) []string {
	if Has(owners, name) {
		return owners
	}
	return Normalize(append(append([]string{}, owners...), name))
}

// Without returns owners minus name.
func Without(owners []string, name string) []string {
	out := make([]string, 0, len(owners))
	for _, o := range owners {
		if o != name {
			out = append(out, o)
		}
	}
	return out
}

// Same reports whether two normalized lists are equal.
func Same(a, b []string) bool {
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

// Mark adds Vidra's markers to an object about to be applied, every owner
// claiming contentHash without a UID. The controller writes records bound
// to owners with MarkRecord.
func Mark(u *unstructured.Unstructured, owners []string, contentHash string) {
	rec := Record{}
	for _, name := range owners {
		rec[name] = Claim{Hash: contentHash}
	}
	MarkRecord(u, rec, contentHash)
}
