package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestRecordedResource(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry ManagedResource
		want  schema.GroupVersionResource
		ok    bool
	}{
		{"recorded", ManagedResource{APIVersion: "apps/v1", Group: "apps", Version: "v1", Resource: "deployments"},
			schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
		{"version from apiVersion", ManagedResource{APIVersion: "kubevirt.io/v1", Group: "kubevirt.io", Resource: "virtualmachines"},
			schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"}, true},
		{"older entry without a resource", ManagedResource{APIVersion: "v1", Kind: "ConfigMap"}, schema.GroupVersionResource{}, false},
	} {
		got, ok := tc.entry.RecordedResource()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
