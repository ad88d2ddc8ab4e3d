// Package opertest runs Vidra's operator inside a test process, against a
// control plane of the test harness.
package opertest

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
)

// Clients are the three clients tests read and write the cluster with.
type Clients struct {
	Kube  kubernetes.Interface
	Vidra versioned.Interface
	Dyn   dynamic.Interface
}

// NewClients builds them for cfg; a bad cfg is a broken test setup.
func NewClients(cfg *rest.Config) Clients {
	return Clients{
		Kube:  kubernetes.NewForConfigOrDie(cfg),
		Vidra: versioned.NewForConfigOrDie(cfg),
		Dyn:   dynamic.NewForConfigOrDie(cfg),
	}
}

// Config is what tests start from: hour-long intervals, so that only what
// a test triggers happens, and short timeouts towards Infrahub and remote
// clusters, so failures show quickly.
func Config(cfg *rest.Config, namespace string) operator.Config {
	return operator.Config{
		RESTConfig:       cfg,
		Namespace:        namespace,
		SyncInterval:     time.Hour,
		ResourceInterval: time.Hour,
		SyncWorkers:      2,
		ResourceWorkers:  4,
		InfrahubTimeout:  5 * time.Second,
		RemoteTimeout:    5 * time.Second,
	}
}

// Start builds the operator, runs it until the test ends and waits for its
// caches. With clean, the end of the test first deletes every InfrahubSync,
// GitSync and VidraResource while the operator still runs, so that finalizers
// complete and the next test starts on a clean cluster; finalizers still
// left after that are removed by force, and the test fails.
func Start(t testing.TB, cfg operator.Config, clean bool) *operator.Operator {
	t.Helper()
	op, err := operator.New(cfg)
	if err != nil {
		t.Fatalf("operator: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	t.Cleanup(func() {
		if clean {
			deleteAll(t, versioned.NewForConfigOrDie(cfg.RESTConfig))
		}
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator Run returned: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("operator did not stop within 30s")
		}
	})
	err = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return op.HasSynced(), nil })
	if err != nil {
		t.Fatalf("operator caches did not sync")
	}
	return op
}

func deleteAll(t testing.TB, vidra versioned.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = vidra.InfrahubV1alpha1().InfrahubSyncs().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = vidra.InfrahubV1alpha1().GitSyncs().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = vidra.InfrahubV1alpha1().VidraResources().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		vrs, err := vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		syncs, err := vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		gitSyncs, err := vidra.InfrahubV1alpha1().GitSyncs().List(ctx, metav1.ListOptions{})
		return err == nil && len(vrs.Items) == 0 && len(syncs.Items) == 0 && len(gitSyncs.Items) == 0, nil
	})
	if err == nil {
		return
	}
	// Last resort, so later tests are not blocked by these leftovers.
	vrs, _ := vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	for _, vr := range vrs.Items {
		vr.Finalizers = nil
		_, _ = vidra.InfrahubV1alpha1().VidraResources().Update(ctx, &vr, metav1.UpdateOptions{})
	}
	dropFinalizers := []byte(`{"metadata":{"finalizers":null}}`)
	syncs, _ := vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{})
	for _, s := range syncs.Items {
		_, _ = vidra.InfrahubV1alpha1().InfrahubSyncs().Patch(ctx, s.Name, types.MergePatchType, dropFinalizers, metav1.PatchOptions{})
	}
	gitSyncs, _ := vidra.InfrahubV1alpha1().GitSyncs().List(ctx, metav1.ListOptions{})
	for _, s := range gitSyncs.Items {
		_, _ = vidra.InfrahubV1alpha1().GitSyncs().Patch(ctx, s.Name, types.MergePatchType, dropFinalizers, metav1.PatchOptions{})
	}
	t.Errorf("cleanup: VidraResources still present after deleting everything: %v", err)
}
