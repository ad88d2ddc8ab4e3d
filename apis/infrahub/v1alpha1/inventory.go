package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

// RecordedResource returns the resource an inventory entry was recorded
// with. Entries written before resources were recorded have none (false):
// their resource has to be found through discovery from APIVersion and Kind.
func (e ManagedResource) RecordedResource() (schema.GroupVersionResource, bool) {
	if e.Resource == "" {
		return schema.GroupVersionResource{}, false
	}
	version := e.Version
	if version == "" {
		if gv, err := schema.ParseGroupVersion(e.APIVersion); err == nil {
			version = gv.Version
		}
	}
	return schema.GroupVersionResource{Group: e.Group, Version: version, Resource: e.Resource}, true
}
