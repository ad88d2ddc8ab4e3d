package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/ownership"
	"github.com/vidra-operator/vidra/controllers/watch"
	"github.com/vidra-operator/vidra/test/opertest"
)

// killSwitch is a transport that lets an operator apply `after` objects
// and then cuts it off from the API server for good, as a kill -9 in the
// middle of a pass would: what it applied stays, nothing else it meant to
// write (the rest of the objects, the status) arrives.
type killSwitch struct {
	after           int32
	sent, completed atomic.Int32
	once            sync.Once
	killed          chan struct{}
}

func (k *killSwitch) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		isApply := req.Method == http.MethodPatch && strings.Contains(req.URL.Path, "/configmaps/")
		if k.sent.Load() >= k.after || isApply && k.sent.Add(1) > k.after {
			return nil, errors.New("operator killed")
		}
		resp, err := rt.RoundTrip(req)
		if isApply && k.completed.Add(1) == k.after {
			// The last apply let through has landed: the process dies.
			k.once.Do(func() { close(k.killed) })
		}
		return resp, err
	})
}

func crashManifest(ns string, names ...string) string {
	var docs []string
	for _, n := range names {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  k: v\n", n, ns))
	}
	return strings.Join(docs, "---\n")
}

// TestCrashMidApplyLeavesNothingUntracked: an operator killed in the
// middle of the first pass of a VidraResource, then restarted (once with
// the same manifest, once after the manifest changed while it was down),
// ends with every object it manages in the inventory, and the objects the
// killed pass applied that left the manifest pruned.
func TestCrashMidApplyLeavesNothingUntracked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changed bool
	}{{"restarted", false}, {"changed while down", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := opertest.NewClients(cp.RESTConfig())
			id := envCounter.Add(1)
			opNS, ns, vrName := fmt.Sprintf("vidra-system-%d", id), fmt.Sprintf("crash-%d", id), fmt.Sprintf("crash-%d", id)
			for _, name := range []string{opNS, ns} {
				_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
				assert.NilError(t, err)
			}
			t.Cleanup(func() {
				for _, name := range []string{opNS, ns} {
					_ = c.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
				}
			})
			var first []string
			for i := 0; i < 12; i++ {
				first = append(first, fmt.Sprintf("first-%d", i))
			}
			_, err := c.Vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
				ObjectMeta: metav1.ObjectMeta{Name: vrName},
				Spec:       v1alpha1.VidraResourceSpec{Manifest: crashManifest(ns, first...)},
			}, metav1.CreateOptions{})
			assert.NilError(t, err)

			// The first operator applies 4 of the 12 objects, then dies.
			kill := &killSwitch{after: 4, killed: make(chan struct{})}
			cfg := cp.RESTConfig()
			cfg.WrapTransport = kill.wrap
			runFirst(ctx, t, opertest.Config(cfg, opNS), kill.killed)
			applied := managedBy(ctx, t, c, ns, vrName)
			assert.Equal(t, len(applied), 4, "the killed pass applied %v", applied)
			vr, err := c.Vidra.InfrahubV1alpha1().VidraResources().Get(ctx, vrName, metav1.GetOptions{})
			assert.NilError(t, err)
			assert.Equal(t, len(vr.Status.ManagedResources), 0, "the killed pass recorded nothing")

			want := first
			if tc.changed {
				// While the operator is down the manifest changes: one
				// object stays, the others leave, a new one arrives.
				want = []string{"first-0", "second"}
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					vr, err := c.Vidra.InfrahubV1alpha1().VidraResources().Get(ctx, vrName, metav1.GetOptions{})
					if err != nil {
						return err
					}
					vr.Spec.Manifest = crashManifest(ns, want...)
					_, err = c.Vidra.InfrahubV1alpha1().VidraResources().Update(ctx, vr, metav1.UpdateOptions{})
					return err
				})
				assert.NilError(t, err)
			}

			// A new operator takes over.
			opertest.Start(t, opertest.Config(cp.RESTConfig(), opNS), true)
			err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				vr, err = c.Vidra.InfrahubV1alpha1().VidraResources().Get(ctx, vrName, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
				return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == vr.Generation &&
					len(managedBy(ctx, t, c, ns, vrName)) == len(want), nil
			})
			assert.NilError(t, err, "VidraResource never converged: %+v; managed objects %v", vr.Status.Conditions, managedBy(ctx, t, c, ns, vrName))
			var recorded []string
			for _, e := range vr.Status.ManagedResources {
				recorded = append(recorded, e.Name)
			}
			sort.Strings(recorded)
			sorted := append([]string(nil), want...)
			sort.Strings(sorted)
			assert.DeepEqual(t, recorded, sorted)
			assert.DeepEqual(t, managedBy(ctx, t, c, ns, vrName), sorted)
		})
	}
}

// runFirst runs an operator until the kill switch fires, then stops it.
func runFirst(ctx context.Context, t *testing.T, cfg operator.Config, killed <-chan struct{}) {
	t.Helper()
	op, err := operator.New(cfg)
	assert.NilError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = op.Run(runCtx) }()
	select {
	case <-killed:
	case <-time.After(time.Minute):
		t.Fatal("the first operator never reached the kill switch")
	}
	stop()
	<-done
}

// managedBy lists the ConfigMaps in ns Vidra manages for owner, sorted.
func managedBy(ctx context.Context, t *testing.T, c opertest.Clients, ns, owner string) []string {
	t.Helper()
	list, err := c.Dyn.Resource(gvrConfigMap).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: watch.DefaultLabelSelector})
	assert.NilError(t, err)
	var out []string
	for i := range list.Items {
		if _, ok := ownership.ReadRecord(&list.Items[i])[owner]; ok {
			out = append(out, list.Items[i].GetName())
		}
	}
	sort.Strings(out)
	return out
}
