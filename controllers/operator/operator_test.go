package operator

import (
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// After a rotation or a recovery, every VidraResource with anything on that
// cluster is reconciled: its destination, its last applied destination, or
// an object of its inventory.
func TestResourcesOnServer(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	add := func(name string, mutate func(*v1alpha1.VidraResource)) {
		vr := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: name}}
		mutate(vr)
		assert.NilError(t, indexer.Add(vr))
	}
	add("dest", func(vr *v1alpha1.VidraResource) { vr.Spec.Destination.Server = "https://K8s.example.com" })
	add("moving-away", func(vr *v1alpha1.VidraResource) {
		vr.Status.AppliedDestination = &v1alpha1.Destination{Server: "https://k8s.example.com:443/"}
	})
	add("leftovers", func(vr *v1alpha1.VidraResource) {
		vr.Status.ManagedResources = []v1alpha1.ManagedResource{{Name: "x"}, {Name: "y", Server: "https://k8s.example.com:443"}}
	})
	add("local", func(*v1alpha1.VidraResource) {})
	add("elsewhere", func(vr *v1alpha1.VidraResource) { vr.Spec.Destination.Server = "https://k8s.example.com:6443" })

	got := resourcesOn(listers.NewVidraResourceLister(indexer), "https://k8s.example.com:443")
	assert.DeepEqual(t, got, []string{"dest", "leftovers", "moving-away"})
}
