package manifest

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// LastAppliedAnnotation is kubectl's copy of the whole last applied object;
// on a big object it is as large as the object itself.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// StripForCache is a cache.TransformFunc for informers: it drops
// metadata.managedFields and the last-applied annotation, often most of an
// object's size, which drift detection never reads. It changes the object
// in place, as transforms may, and is idempotent. Anything else, tombstones
// (cache.DeletedFinalStateUnknown) included, is returned untouched.
//
// Because of it, objects from such an informer are not fit for computing an
// apply from their managedFields; read those from the API server.
func StripForCache(obj any) (any, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		if o == nil {
			return obj, nil
		}
		md, ok := o.Object["metadata"].(map[string]any)
		if !ok {
			return obj, nil
		}
		delete(md, "managedFields")
		// Edit the map directly: GetAnnotations gives nothing for a map
		// holding one non-string, and SetAnnotations would then wipe it.
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, LastAppliedAnnotation)
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	case metav1.Object:
		if o.GetManagedFields() != nil {
			o.SetManagedFields(nil)
		}
		if ann := o.GetAnnotations(); ann != nil {
			if _, ok := ann[LastAppliedAnnotation]; ok {
				kept := make(map[string]string, len(ann)-1)
				for k, v := range ann {
					if k != LastAppliedAnnotation {
						kept[k] = v
					}
				}
				if len(kept) == 0 {
					kept = nil
				}
				o.SetAnnotations(kept)
			}
		}
	}
	return obj, nil
}
