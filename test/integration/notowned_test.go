package integration

import (
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
)

// A NotOwned object is rechecked with backoff, not at the resource interval
// (10 minutes): once its owner deletes it, Vidra creates its own within
// seconds, with no event from the drift watch (which sees only Vidra's
// objects) and no reconcile request.
func TestNotOwnedIsRecheckedWithBackoff(t *testing.T) {
	e := newEnv(t)
	_, err := e.kube.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "occupied"}, Data: map[string]string{"owner": "someone-else"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	e.newResource("waiter", configMap("default", "occupied", map[string]string{"owner": "vidra"}))
	e.waitResourceReason("waiter", vidraresource.ReasonNotOwned)

	assert.NilError(t, e.kube.CoreV1().ConfigMaps("default").Delete(e.ctx, "occupied", metav1.DeleteOptions{}))
	vr := e.waitResourceReason("waiter", vidraresource.ReasonApplied)
	assert.Equal(t, vr.Status.Summary, "Applied 1 object")
	cm, err := e.kube.CoreV1().ConfigMaps("default").Get(e.ctx, "occupied", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["owner"], "vidra")
	assert.Equal(t, cm.Labels[v1alpha1.LabelManagedBy], v1alpha1.ManagedByVidra)
	e.deleteResource("waiter")
}
