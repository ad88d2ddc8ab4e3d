package vidraresource

import (
	"testing"

	"gotest.tools/v3/assert"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

func TestMergeInventoryKeepsOldAndIdentifiesByGroupKind(t *testing.T) {
	old := []v1alpha1.ManagedResource{
		{APIVersion: "networking.k8s.io/v1beta1", Group: "networking.k8s.io", Version: "v1beta1", Kind: "Ingress", Namespace: "n", Name: "i", Resource: "ingresses"},
		{APIVersion: "v1", Kind: "Service", Namespace: "n", Name: "gone", Version: "v1", Resource: "services"},
	}
	next := []v1alpha1.ManagedResource{
		{APIVersion: "networking.k8s.io/v1", Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Namespace: "n", Name: "i", Resource: "ingresses"},
	}
	merged := mergeInventory(old, next)
	assert.Equal(t, len(merged), 2, "an apiVersion change is the same object")
	for _, m := range merged {
		if m.Kind == "Ingress" {
			assert.Equal(t, m.Version, "v1")
		}
	}
}
