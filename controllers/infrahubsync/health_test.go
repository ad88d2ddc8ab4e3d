package infrahubsync

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
)

func TestHealthSummaryAddsUpTheResources(t *testing.T) {
	client := fake.NewClientset()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	c, err := NewController(client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, &countingSource{}, nil, nil, Options{})
	assert.NilError(t, err)
	isController := true
	vr := func(name string, h *v1alpha1.HealthSummary) *v1alpha1.VidraResource {
		return &v1alpha1.VidraResource{
			ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1,
				OwnerReferences: []metav1.OwnerReference{{Kind: "InfrahubSync", Name: "s", UID: "s-uid", Controller: &isController}},
			},
			Status: v1alpha1.VidraResourceStatus{Health: h},
		}
	}
	sync := &v1alpha1.InfrahubSync{ObjectMeta: metav1.ObjectMeta{Name: "s", UID: "s-uid", Generation: 3}}
	indexer := factory.Infrahub().V1alpha1().VidraResources().Informer().GetIndexer()
	assert.NilError(t, indexer.Add(vr("leaf1", &v1alpha1.HealthSummary{Status: "Current", Current: 4})))
	assert.NilError(t, indexer.Add(vr("web", &v1alpha1.HealthSummary{Status: "InProgress", Current: 2, InProgress: 1})))

	status := &v1alpha1.InfrahubSyncStatus{}
	c.healthSummary(sync, status)
	assert.DeepEqual(t, *status.Health, v1alpha1.HealthSummary{Status: "InProgress", Current: 6, InProgress: 1})
	cond := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionHealthy)
	assert.Equal(t, cond.Status, metav1.ConditionFalse)
	assert.Equal(t, cond.Reason, "InProgress")
	assert.Equal(t, cond.Message, "0 failed, 1 in progress, 0 unknown of 7 objects: web is InProgress")
	assert.Equal(t, cond.ObservedGeneration, int64(3))

	// A resource not reconciled yet counts as one unknown object; a failed
	// one makes the sync Failed.
	assert.NilError(t, indexer.Add(vr("new", nil)))
	assert.NilError(t, indexer.Update(vr("web", &v1alpha1.HealthSummary{Status: "Failed", Current: 2, Failed: 1})))
	c.healthSummary(sync, status)
	assert.DeepEqual(t, *status.Health, v1alpha1.HealthSummary{Status: "Failed", Current: 6, Failed: 1, Unknown: 1})

	assert.NilError(t, indexer.Delete(vr("new", nil)))
	assert.NilError(t, indexer.Update(vr("web", &v1alpha1.HealthSummary{Status: "Current", Current: 3})))
	c.healthSummary(sync, status)
	cond = meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionHealthy)
	assert.Equal(t, cond.Status, metav1.ConditionTrue)
	assert.Equal(t, cond.Message, "All 7 objects of 2 VidraResources are healthy")
}
