package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// BenchmarkRequestCost reports the CPU time the API server and etcd spend
// on each kind of request Vidra makes per artifact, next to the floor's
// work: the 4 applies of an artifact's objects. Convergence on a small
// machine is bound by that CPU, so these numbers bound how close to the
// floor Vidra can get. Each kind is timed over 500 requests from
// `parallelism` clients.
func BenchmarkRequestCost(b *testing.B) {
	const n = 500
	ctx := context.Background()
	c := newClients(b)
	procs := cp.Processes()
	vrs := c.vidra.InfrahubV1alpha1().VidraResources()
	var round int
	for _, rc := range []struct {
		name string
		// setup runs before the timed requests (once per artifact index).
		setup func(ns string, i int) error
		do    func(ns string, i int) error
	}{
		{name: "objects=apply-4", do: func(ns string, i int) error { return applyArtifact(ctx, c, ns, i, "") }},
		{name: "objects=apply-4-must-not-exist", do: func(ns string, i int) error { return applyArtifact(ctx, c, ns, i, "1") }},
		{name: "objects=apply-4-vidra-marked", do: func(ns string, i int) error { return applyMarkedArtifact(ctx, c, ns, i) }},
		{name: "objects=apply-4-label-only", do: func(ns string, i int) error {
			for _, o := range artifactObjects(ns, i) {
				o.obj.SetLabels(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
				if _, err := c.dyn.Resource(o.gvr).Namespace(ns).Apply(ctx, o.obj.GetName(), o.obj, metav1.ApplyOptions{FieldManager: v1alpha1.FieldManager, Force: true}); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "objects=get-4-watch-cache", setup: func(ns string, i int) error { return applyArtifact(ctx, c, ns, i, "") },
			do: func(ns string, i int) error {
				for _, o := range artifactObjects(ns, i) {
					if _, err := c.dyn.Resource(o.gvr).Namespace(ns).Get(ctx, o.obj.GetName(), metav1.GetOptions{ResourceVersion: "0"}); err != nil {
						return err
					}
				}
				return nil
			}},
		{name: "vidraresource=create", do: func(ns string, i int) error { return createResource(ctx, c, ns, i) }},
		{name: "vidraresource=status", setup: func(ns string, i int) error { return createResource(ctx, c, ns, i) },
			do: func(ns string, i int) error { return applyResourceStatus(ctx, c, ns, i) }},
		{name: "vidraresource=status-merge-patch", setup: func(ns string, i int) error { return createResource(ctx, c, ns, i) },
			do: func(ns string, i int) error {
				body, err := json.Marshal(map[string]any{"status": resourceStatus(ns, i)})
				if err != nil {
					return err
				}
				_, err = vrs.Patch(ctx, costResourceName(ns, i), types.MergePatchType, body, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager}, "status")
				return err
			}},
		{name: "vidraresource=status-update", setup: func(ns string, i int) error { return createResource(ctx, c, ns, i) },
			do: func(ns string, i int) error {
				vr, err := vrs.Get(ctx, costResourceName(ns, i), metav1.GetOptions{ResourceVersion: "0"})
				if err != nil {
					return err
				}
				vr.Status = resourceStatus(ns, i)
				_, err = vrs.UpdateStatus(ctx, vr, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager})
				return err
			}},
		{name: "event=create", do: func(ns string, i int) error {
			// Events about cluster-scoped objects go to "default".
			_, err := c.kube.EventsV1().Events(metav1.NamespaceDefault).Create(ctx, &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: costResourceName(ns, i)}, EventTime: metav1.NowMicro(),
				ReportingController: "vidra", ReportingInstance: "vidra-bench", Action: "Apply", Reason: "Applied", Type: corev1.EventTypeNormal,
				Regarding: corev1.ObjectReference{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "VidraResource", Name: costResourceName(ns, i)},
				Note:      "4 objects created"}, metav1.CreateOptions{})
			return err
		}},
	} {
		b.Run(rc.name, func(b *testing.B) {
			var apiserver, etcd time.Duration
			for i := 0; i < b.N; i++ {
				round++
				ns := fmt.Sprintf("cost-%d", round)
				if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				if rc.setup != nil {
					inParallel(b, n, func(i int) error { return rc.setup(ns, i) })
				}
				// Let the work the setup caused (the controller manager's
				// ReplicaSets, for one) end before timing.
				settle(b, procs["kube-apiserver"])
				a0, e0 := cpuTime(b, procs["kube-apiserver"]), cpuTime(b, procs["etcd"])
				inParallel(b, n, func(i int) error { return rc.do(ns, i) })
				apiserver += cpuTime(b, procs["kube-apiserver"]) - a0
				etcd += cpuTime(b, procs["etcd"]) - e0
				deleteNamespaces(ctx, b, c, ns)
			}
			per := float64(b.N * n)
			b.ReportMetric(float64(apiserver.Microseconds())/1000/per, "ms-apiserver/op")
			b.ReportMetric(float64(etcd.Microseconds())/1000/per, "ms-etcd/op")
		})
	}
	// VidraResources are cluster-scoped: the namespaces took none along.
	for r := 1; r <= round; r++ {
		for i := 0; i < n; i++ {
			_ = vrs.Delete(ctx, costResourceName(fmt.Sprintf("cost-%d", r), i), metav1.DeleteOptions{})
		}
	}
}

type benchObject struct {
	gvr schema.GroupVersionResource
	obj *unstructured.Unstructured
}

var artifactGVRs = map[string]schema.GroupVersionResource{
	"Deployment":     gvrDeployment,
	"ServiceAccount": {Version: "v1", Resource: "serviceaccounts"},
	"Service":        {Version: "v1", Resource: "services"},
	"Ingress":        {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
}

// artifactObjects decodes the objects of artifact i in ns.
func artifactObjects(ns string, i int) []benchObject {
	var out []benchObject
	for _, doc := range strings.Split(artifact(ns, fmt.Sprintf("app-%d", i)), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			panic(fmt.Sprintf("benchmark artifact does not decode: %v", err))
		}
		out = append(out, benchObject{artifactGVRs[u.GetKind()], u})
	}
	return out
}

// applyArtifact applies the objects of artifact i, with a resourceVersion
// precondition unless it is empty.
func applyArtifact(ctx context.Context, c clients, ns string, i int, resourceVersion string) error {
	for _, o := range artifactObjects(ns, i) {
		o.obj.SetResourceVersion(resourceVersion)
		if _, err := c.dyn.Resource(o.gvr).Namespace(ns).Apply(ctx, o.obj.GetName(), o.obj, metav1.ApplyOptions{FieldManager: "floor", Force: true}); err != nil {
			return err
		}
	}
	return nil
}

// applyMarkedArtifact applies the objects of artifact i carrying the
// markers Vidra adds: its label and its ownership annotations.
func applyMarkedArtifact(ctx context.Context, c clients, ns string, i int) error {
	for _, o := range artifactObjects(ns, i) {
		ownership.MarkRecord(o.obj, ownership.Record{costResourceName(ns, i): {UID: "0b6f8a5e-7c38-4a51-9f0c-2d1e5b7a9c3d", Hash: strings.Repeat("ab", 32)}}, strings.Repeat("ab", 32))
		if _, err := c.dyn.Resource(o.gvr).Namespace(ns).Apply(ctx, o.obj.GetName(), o.obj, metav1.ApplyOptions{FieldManager: v1alpha1.FieldManager, Force: true}); err != nil {
			return err
		}
	}
	return nil
}

func costResourceName(ns string, i int) string { return fmt.Sprintf("%s-%d", ns, i) }

// createResource applies a VidraResource the way the InfrahubSync
// controller creates one.
func createResource(ctx context.Context, c clients, ns string, i int) error {
	body, err := json.Marshal(map[string]any{"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "VidraResource",
		"metadata": map[string]any{"name": costResourceName(ns, i), "labels": map[string]string{v1alpha1.LabelSync: ns, v1alpha1.LabelArtifact: strconv.Itoa(i)},
			"finalizers": []string{v1alpha1.VidraResourceFinalizer}},
		"spec": map[string]any{"manifest": artifact(ns, fmt.Sprintf("app-%d", i)), "destination": map[string]any{"reconcileOnEvents": true}}})
	if err != nil {
		return err
	}
	force := true
	_, err = c.vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, costResourceName(ns, i), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force})
	return err
}

// applyResourceStatus writes the status of createResource's VidraResource
// the way the VidraResource controller does after applying its objects.
func applyResourceStatus(ctx context.Context, c clients, ns string, i int) error {
	body, err := json.Marshal(map[string]any{"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "VidraResource",
		"metadata": map[string]any{"name": costResourceName(ns, i)}, "status": resourceStatus(ns, i)})
	if err != nil {
		return err
	}
	force := true
	_, err = c.vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, costResourceName(ns, i), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force}, "status")
	return err
}

// resourceStatus is a VidraResource's status after its objects applied.
func resourceStatus(ns string, i int) v1alpha1.VidraResourceStatus {
	now := metav1.Now()
	st := v1alpha1.VidraResourceStatus{ObservedGeneration: 1, DeployState: v1alpha1.StateSucceeded, LastSyncTime: &now,
		LastAppliedChecksum: strings.Repeat("ab", 32)}
	for _, o := range artifactObjects(ns, i) {
		gvk := o.obj.GroupVersionKind()
		st.ManagedResources = append(st.ManagedResources, v1alpha1.ManagedResource{APIVersion: o.obj.GetAPIVersion(), Kind: gvk.Kind,
			Name: o.obj.GetName(), Namespace: ns, Group: gvk.Group, Version: gvk.Version, Resource: o.gvr.Resource})
	}
	st.ObjectCount = int32(len(st.ManagedResources))
	for _, c := range []struct{ typ, status, reason string }{{"Ready", "True", "Applied"}, {"Reconciling", "False", "Applied"}, {"Stalled", "False", "Applied"}} {
		st.Conditions = append(st.Conditions, metav1.Condition{Type: c.typ, Status: metav1.ConditionStatus(c.status), Reason: c.reason,
			Message: "4 objects created", LastTransitionTime: now, ObservedGeneration: 1})
	}
	return st
}

// inParallel runs f for 0..n-1 from `parallelism` goroutines.
func inParallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < parallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// settle waits until the API server is idle: under 5% of a core for a
// second.
func settle(b *testing.B, pid int) {
	b.Helper()
	for start := time.Now(); time.Since(start) < time.Minute; {
		before := cpuTime(b, pid)
		time.Sleep(time.Second)
		if cpuTime(b, pid)-before < 50*time.Millisecond {
			return
		}
	}
	b.Logf("the API server stayed busy; the next numbers include its background work")
}

// cpuTime reads the user and system CPU time of a process.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) may hold spaces; count from after it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	// Linux reports in clock ticks of 1/100 s (USER_HZ).
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
