package watch

import (
	"bytes"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// strippedAnnotations are never read by Vidra and are not drift: kubectl's
// client-side apply record (a full copy of the object, often the largest
// thing in it) and the revision the Deployment controller stamps on every
// new Deployment, which would otherwise bring each one's owner back once.
var strippedAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
}

// StripTransform is the default Options.Transform. It drops status,
// metadata.managedFields and strippedAnnotations: none is ever drift, and
// managedFields and the kubectl last-applied annotation alone are often more
// than half of a cached object. It mutates in place,
// which client-go allows since the informer owns the object at that point,
// and is idempotent. Anything that is not an *unstructured.Unstructured
// (tombstones) passes through untouched.
func StripTransform(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u == nil {
		return obj, nil
	}
	delete(u.Object, "status")
	meta, ok := u.Object["metadata"].(map[string]any)
	if !ok {
		return obj, nil
	}
	delete(meta, "managedFields")
	if ann, ok := meta["annotations"].(map[string]any); ok {
		for _, key := range strippedAnnotations {
			delete(ann, key)
		}
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
	}
	return u, nil
}

// ignoredTop and ignoredMetadata are the fields that change without the
// object's content changing: status, and what the API server bumps on every
// write, status writes included. Reacting to them would make every reconcile
// trigger the next.
var (
	ignoredTop      = map[string]bool{"status": true}
	ignoredMetadata = map[string]bool{
		"managedFields":   true,
		"resourceVersion": true,
		"generation":      true,
	}
)

// contentChanged reports whether newObj differs from oldObj in anything but
// status, metadata.managedFields, metadata.resourceVersion and
// metadata.generation.
func contentChanged(oldObj, newObj *cachedObject) bool {
	return !bytes.Equal(oldObj.content, newObj.content)
}

// ownersOf returns the union of the owner names in AnnotationOwnedBy of the
// given objects, sorted and without duplicates. Nil objects are skipped.
func ownersOf(objs ...*cachedObject) []string {
	var owners []string
	for _, o := range objs {
		if o == nil {
			continue
		}
		for name := range strings.SplitSeq(o.ownedBy, ",") {
			if name = strings.TrimSpace(name); name != "" {
				owners = append(owners, name)
			}
		}
	}
	slices.Sort(owners)
	return slices.Compact(owners)
}
