package vidraresource

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

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

func TestMarkRecordedMatchesServerAndIgnoresVersion(t *testing.T) {
	ingress := func(apiVersion, name string) *desired {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind("Ingress")
		u.SetNamespace("n")
		u.SetName(name)
		return &desired{obj: u, mapping: &meta.RESTMapping{Resource: schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}}}
	}
	inventory := []v1alpha1.ManagedResource{
		{APIVersion: "networking.k8s.io/v1beta1", Group: "networking.k8s.io", Version: "v1beta1", Kind: "Ingress", Namespace: "n", Name: "old", Resource: "ingresses", Server: "https://a"},
		{APIVersion: "networking.k8s.io/v1", Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Namespace: "n", Name: "elsewhere", Resource: "ingresses", Server: "https://b"},
	}
	objs := []*desired{ingress("networking.k8s.io/v1", "old"), ingress("networking.k8s.io/v1", "elsewhere"), ingress("networking.k8s.io/v1", "new"), {obj: &unstructured.Unstructured{}, waitingForCRD: true}}
	markRecorded(objs, inventory, "https://a")
	assert.Assert(t, objs[0].recorded, "an apiVersion change is the same recorded object")
	assert.Assert(t, !objs[1].recorded, "recorded on another cluster only")
	assert.Assert(t, !objs[2].recorded)
	assert.Assert(t, !objs[3].recorded)
}

func TestMergeInventoryKeepsRecordedHealth(t *testing.T) {
	old := []v1alpha1.ManagedResource{{APIVersion: "apps/v1", Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "n", Name: "web", Resource: "deployments",
		Health: "InProgress", HealthMessage: "1 of 2 replicas available"}}
	next := []v1alpha1.ManagedResource{{APIVersion: "apps/v1", Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "n", Name: "web", Resource: "deployments"}}
	// Otherwise every pass would find the inventory changed and write it.
	assert.DeepEqual(t, mergeInventory(old, next), old)
}

// A pass that starts before the informer shows this controller's last
// status write starts from that write; once the informer caught up (or
// the spec changed) its copy is used.
func TestPassStartsFromTheStatusLastWritten(t *testing.T) {
	var w writtenStatus
	stale := &v1alpha1.VidraResource{}
	stale.Name, stale.ResourceVersion, stale.Generation = "a", "10", 1
	wrote := stale.DeepCopy()
	wrote.ResourceVersion = "12"
	wrote.Status.ObjectCount = 3
	w.record(wrote)

	assert.Equal(t, w.latest(stale).Status.ObjectCount, int32(3))
	assert.Equal(t, w.latest(stale).ResourceVersion, "10", "only the status is taken from the write")
	assert.Equal(t, w.statusVersion(stale), "12", "a status write is conditional on the status it replaces")

	respecced := stale.DeepCopy()
	respecced.Generation = 2
	assert.Equal(t, w.latest(respecced).Status.ObjectCount, int32(0), "another generation: the informer's copy")

	caughtUp := wrote.DeepCopy()
	caughtUp.ResourceVersion = "13"
	caughtUp.Status.ObjectCount = 4
	assert.Equal(t, w.latest(caughtUp).Status.ObjectCount, int32(4))
	assert.Equal(t, w.latest(stale).Status.ObjectCount, int32(0), "forgotten once caught up")

	w.record(wrote)
	w.observe(caughtUp)
	assert.Equal(t, len(w.by), 0, "nothing kept once the informer shows the write")
}
