package watch_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/vidra-operator/vidra/controllers/health"
	"github.com/vidra-operator/vidra/controllers/watch"
)

// TestHealthChangesAreReportedApartFromDrift plays the Deployment
// controller on a real API server: status writes change the health the
// cache keeps, are reported to OnHealthChange and never to OnChange.
func TestHealthChangesAreReportedApartFromDrift(t *testing.T) {
	_, kc, dc := clients(t)
	ctx := t.Context()
	ns := createNamespace(t, kc, "health-events")
	deps := kc.AppsV1().Deployments(ns)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: managedMeta("web", "shop"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	created, err := deps.Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	drift, healthRec := &recorder{}, &recorder{}
	m := newManager(t, dc, watch.Options{OnChange: drift.onChange, OnHealthChange: healthRec.onChange})
	m.SetOwnerResources("shop", []schema.GroupVersionResource{deployments})
	waitSynced(t, m, deployments)
	web := change{[]string{"shop"}, deployments, ns, "web"}

	// The initial list is reported for health (the owner may have judged
	// the object before the cache held it), never as drift.
	healthRec.expectNext(t, ns, 0, web)
	if got, observed := m.Health(deployments, ns, "web"); !observed || got.Status != health.InProgress {
		t.Fatalf("Health before rollout = %+v, %v; want InProgress, true", got, observed)
	}

	setStatus := func(available int32) {
		t.Helper()
		cur, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status = appsv1.DeploymentStatus{ObservedGeneration: created.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: available, AvailableReplicas: available}
		if _, err := deps.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mark := healthRec.mark(ns)
	setStatus(1)
	healthRec.expectNext(t, ns, mark, web)
	if got, _ := m.Health(deployments, ns, "web"); got != (health.Result{Status: health.InProgress, Message: "1 of 2 replicas available"}) {
		t.Fatalf("Health = %+v", got)
	}
	mark = healthRec.mark(ns)
	setStatus(2)
	healthRec.expectNext(t, ns, mark, web)
	if got, _ := m.Health(deployments, ns, "web"); got != (health.Result{Status: health.Current, Message: "2/2 replicas available"}) {
		t.Fatalf("Health = %+v", got)
	}
	// A status write that leaves the health as it was is not reported:
	// the next report is the deletion.
	mark = healthRec.mark(ns)
	setStatus(2)
	if err := deps.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	healthRec.expectNext(t, ns, mark, web)
	if got, observed := m.Health(deployments, ns, "web"); !observed || got.Status != health.Unknown {
		t.Fatalf("Health after deletion = %+v, %v; want Unknown, true", got, observed)
	}
	// Only the deletion was drift.
	drift.expectNext(t, ns, 0, web)
}
