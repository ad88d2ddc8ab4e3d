package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

var (
	gvrSDCConfig = schema.GroupVersionResource{Group: "config.sdcio.dev", Version: "v1alpha1", Resource: "configs"}
	gvrKubevirt  = schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"}
)

// resource reads a VidraResource.
func (e *env) resource(name string) *v1alpha1.VidraResource {
	e.t.Helper()
	vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	return vr
}

// waitHealthy waits until the VidraResource's Healthy condition has the
// status and reason.
func (e *env) waitHealthy(name string, status metav1.ConditionStatus, reason string) *v1alpha1.VidraResource {
	e.t.Helper()
	var vr *v1alpha1.VidraResource
	e.eventually(fmt.Sprintf("VidraResource %s Healthy=%s/%s", name, status, reason), func() (bool, error) {
		vr = e.resource(name)
		c := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionHealthy)
		if c == nil || c.Status != status || c.Reason != reason {
			return false, fmt.Errorf("condition: %+v; objects: %+v", c, vr.Status.ManagedResources)
		}
		return true, nil
	})
	return vr
}

// entryHealth returns the health the inventory records for kind name.
func entryHealth(vr *v1alpha1.VidraResource, kind, name string) (string, string) {
	for _, m := range vr.Status.ManagedResources {
		if m.Kind == kind && m.Name == name {
			return m.Health, m.HealthMessage
		}
	}
	return "absent", ""
}

// setStatus plays another controller: it writes the status subresource of
// a live object.
func (e *env) setStatus(gvr schema.GroupVersionResource, ns, name string, status map[string]any) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := e.get(gvr, ns, name)
		if err != nil {
			return err
		}
		obj.Object["status"] = status
		_, err = e.dyn.Resource(gvr).Namespace(ns).UpdateStatus(e.ctx, obj, metav1.UpdateOptions{})
		return err
	})
	assert.NilError(e.t, err)
}

// hasEvent reports whether an event about the VidraResource has the type,
// reason and a note containing text.
func (e *env) hasEvent(name, eventType, reason, text string) bool {
	e.t.Helper()
	events, err := e.kube.EventsV1().Events("default").List(e.ctx, metav1.ListOptions{})
	assert.NilError(e.t, err)
	for _, ev := range events.Items {
		if ev.Regarding.Name == name && ev.Type == eventType && ev.Reason == reason && strings.Contains(ev.Note, text) {
			return true
		}
	}
	return false
}

func condition(vr *v1alpha1.VidraResource, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(vr.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// Health of what was applied, on a real control plane where nothing runs
// the objects: the test plays SDC's config-server, KubeVirt and the kubelet
// by writing status subresources. The VidraResources do not reconcile on
// events, yet their health follows the objects.
func TestHealth(t *testing.T) {
	// Registered first, so it runs after the operator removed its objects:
	// TestVirtualMachinesAndCrossplaneWithRealCRDs has Vidra manage the
	// KubeVirt CRD, which it must not find installed by someone else.
	var e *env
	t.Cleanup(func() {
		crds := e.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = crds.Delete(ctx, "virtualmachines.kubevirt.io", metav1.DeleteOptions{})
		for ctx.Err() == nil {
			if _, err := crds.Get(ctx, "virtualmachines.kubevirt.io", metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("the KubeVirt CRD is still there")
	})
	e = newEnv(t)
	crds := filepath.Join("..", "testdata", "crds")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	assert.NilError(t, cp.InstallCRDs(ctx,
		filepath.Join(crds, "config.sdcio.dev_configs.yaml"),
		filepath.Join(crds, "config.sdcio.dev_configsets.yaml"),
		filepath.Join(crds, "device.network.kubenet.dev_interfaces.yaml"),
		filepath.Join(crds, "device.network.kubenet.dev_bgps.yaml"),
		filepath.Join(crds, "kubevirt.io_virtualmachines.yaml"),
	))
	artifacts := filepath.Join("..", "testdata", "artifacts")
	noEvents := func(vr *v1alpha1.VidraResource) { vr.Spec.Destination.ReconcileOnEvents = false }

	t.Run("network configuration waits for the device", func(t *testing.T) {
		e.newResource("net-leaf1", string(readTestdata(t, filepath.Join(artifacts, "network-leaf1.yaml"))), noEvents,
			func(vr *v1alpha1.VidraResource) {
				vr.Spec.Wait = &v1alpha1.Wait{Timeout: &metav1.Duration{Duration: 10 * time.Minute}}
			})
		// The first pass may judge the objects before the watches list
		// them (Unknown); the watches then bring the status up to date.
		var vr *v1alpha1.VidraResource
		e.eventually("net-leaf1 waiting for the Config only", func() (bool, error) {
			vr = e.resource("net-leaf1")
			ready := condition(vr, v1alpha1.ConditionReady)
			want := "Applied; waiting up to 10m0s for 1 objects to become healthy: Config network/leaf1-uplinks (InProgress: not yet applied to the device)"
			if ready.Reason != vidraresource.ReasonWaitingForHealth || ready.Message != want {
				return false, fmt.Errorf("Ready: %+v", ready)
			}
			return true, nil
		})
		assert.Equal(t, condition(vr, v1alpha1.ConditionReady).Status, metav1.ConditionFalse, "applied is not ready until the device has the configuration")
		h, _ := entryHealth(vr, "Interface", "dc-ams1.leaf1.1.49")
		assert.Equal(t, h, "Current")
		assert.DeepEqual(t, *vr.Status.Health, v1alpha1.HealthSummary{Status: "InProgress", Current: 3, InProgress: 1})

		// The device rejects the configuration.
		e.setStatus(gvrSDCConfig, "network", "leaf1-uplinks", map[string]any{"conditions": []any{map[string]any{
			"type": "Ready", "status": "False", "reason": "Failed", "message": "leaf1 rejected the config: mtu 9300 out of range",
			"lastTransitionTime": "2026-12-05T04:00:00Z",
		}}})
		vr = e.waitResourceReason("net-leaf1", vidraresource.ReasonHealthCheckFailed)
		ready := condition(vr, v1alpha1.ConditionReady)
		assert.Equal(t, ready.Status, metav1.ConditionFalse)
		assert.Assert(t, strings.Contains(ready.Message, "Config network/leaf1-uplinks (Failed: leaf1 rejected the config: mtu 9300 out of range)"), ready.Message)
		healthy := condition(vr, v1alpha1.ConditionHealthy)
		assert.Equal(t, healthy.Status, metav1.ConditionFalse)
		assert.Equal(t, healthy.Reason, "Failed")
		h, msg := entryHealth(vr, "Config", "leaf1-uplinks")
		assert.Equal(t, h, "Failed")
		assert.Equal(t, msg, "leaf1 rejected the config: mtu 9300 out of range")
		assert.Equal(t, vr.Status.Health.Failed, int32(1))
		e.eventually("HealthCheckFailed event", func() (bool, error) {
			return e.hasEvent("net-leaf1", corev1.EventTypeWarning, vidraresource.ReasonHealthCheckFailed, "leaf1-uplinks"), nil
		})

		// The device takes it after all.
		e.setStatus(gvrSDCConfig, "network", "leaf1-uplinks", map[string]any{"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-12-05T04:01:00Z",
		}}})
		vr = e.waitResourceReason("net-leaf1", vidraresource.ReasonApplied)
		assert.Equal(t, condition(vr, v1alpha1.ConditionReady).Status, metav1.ConditionTrue)
		assert.Equal(t, condition(vr, v1alpha1.ConditionReady).Message, "Applied 4 objects, all healthy")
		assert.Equal(t, condition(vr, v1alpha1.ConditionHealthy).Status, metav1.ConditionTrue)
		assert.DeepEqual(t, *vr.Status.Health, v1alpha1.HealthSummary{Status: "Current", Current: 4})

		// Nothing changed: no status write.
		before := vr.ResourceVersion
		e.op.Resources.Enqueue("net-leaf1")
		time.Sleep(time.Second)
		assert.Equal(t, e.resource("net-leaf1").ResourceVersion, before, "an unchanged pass wrote the VidraResource")
	})

	t.Run("a KubeVirt VM becomes ready", func(t *testing.T) {
		e.newResource("vm-db01", string(readTestdata(t, filepath.Join(artifacts, "vm-db01.yaml"))), noEvents)
		vr := e.waitHealthy("vm-db01", metav1.ConditionFalse, "InProgress")
		h, msg := entryHealth(vr, "VirtualMachine", "db01")
		assert.Equal(t, h, "InProgress")
		assert.Equal(t, msg, "not started yet")
		assert.Equal(t, condition(vr, v1alpha1.ConditionReady).Status, metav1.ConditionTrue, "without wait, Ready means applied")

		e.setStatus(gvrKubevirt, "vms", "db01", map[string]any{"printableStatus": "Starting", "created": true})
		e.eventually("VM Starting recorded", func() (bool, error) {
			_, msg := entryHealth(e.resource("vm-db01"), "VirtualMachine", "db01")
			return msg == "Starting", nil
		})
		e.setStatus(gvrKubevirt, "vms", "db01", map[string]any{"printableStatus": "Running", "created": true, "ready": true})
		vr = e.waitHealthy("vm-db01", metav1.ConditionTrue, "Current")
		h, msg = entryHealth(vr, "VirtualMachine", "db01")
		assert.Equal(t, h, "Current")
		assert.Equal(t, msg, "Running")
		e.eventually("Healthy event", func() (bool, error) {
			return e.hasEvent("vm-db01", corev1.EventTypeNormal, vidraresource.ReasonHealthy, "All 3 objects are healthy"), nil
		})
	})

	t.Run("a Deployment times out, then rolls out", func(t *testing.T) {
		ns := "health-web"
		e.newResource("web-health", string(webserver("web", ns, 1)), noEvents, func(vr *v1alpha1.VidraResource) {
			vr.Spec.Wait = &v1alpha1.Wait{Timeout: &metav1.Duration{Duration: 2 * time.Second}}
		})
		// No kubelet: the Deployment controller creates a Pod that never
		// becomes ready on its own.
		vr := e.waitResourceReason("web-health", vidraresource.ReasonHealthCheckFailed)
		ready := condition(vr, v1alpha1.ConditionReady)
		assert.Assert(t, strings.HasPrefix(ready.Message, "Timed out after 2s waiting for 1 objects to become healthy: Deployment health-web/web (InProgress: "), ready.Message)

		// Play the kubelet: the Pod runs and is ready.
		var pods *corev1.PodList
		e.eventually("the Deployment's Pod", func() (bool, error) {
			var err error
			pods, err = e.kube.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=web"})
			return err == nil && len(pods.Items) == 1, err
		})
		pod := pods.Items[0]
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		_, err := e.kube.CoreV1().Pods(ns).UpdateStatus(e.ctx, &pod, metav1.UpdateOptions{})
		assert.NilError(t, err)

		vr = e.waitResourceReason("web-health", vidraresource.ReasonApplied)
		assert.Equal(t, condition(vr, v1alpha1.ConditionReady).Status, metav1.ConditionTrue)
		h, msg := entryHealth(vr, "Deployment", "web")
		assert.Equal(t, h, "Current")
		assert.Equal(t, msg, "1/1 replicas available")
		assert.Equal(t, vr.Status.LastError, "")
	})

	t.Run("a sync passes wait on and sums up health", func(t *testing.T) {
		e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Health_Manifest", TargetLabel: "idle", Content: webserver("idle", "health-idle", 0)})
		e.newSync("health", "Health_Manifest", func(s *v1alpha1.InfrahubSync) {
			s.Spec.Destination.ReconcileOnEvents = false
			s.Spec.Wait = &v1alpha1.Wait{}
		})
		var sync *v1alpha1.InfrahubSync
		e.eventually("sync health summary", func() (bool, error) {
			sync = e.getSync("health")
			h := sync.Status.Health
			return h != nil && h.Status == "Current" && h.Current == 3 && meta.IsStatusConditionTrue(sync.Status.Conditions, v1alpha1.ConditionReady), nil
		})
		assert.Equal(t, condition(&v1alpha1.VidraResource{Status: v1alpha1.VidraResourceStatus{Conditions: sync.Status.Conditions}}, v1alpha1.ConditionHealthy).Status, metav1.ConditionTrue)
		vrs := e.resourcesOf("health")
		assert.Equal(t, len(vrs), 1)
		assert.Assert(t, vrs[0].Spec.Wait != nil, "spec.wait reaches the VidraResources")
		assert.Equal(t, vrs[0].Name, infrahubsync.ResourceName("health", sync.Status.Artifacts[0].ID))
		assert.Equal(t, condition(&vrs[0], v1alpha1.ConditionReady).Message, "Applied 3 objects, all healthy")
	})
}
