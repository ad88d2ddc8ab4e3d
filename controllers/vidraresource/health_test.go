package vidraresource

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/watch"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configsGVR     = schema.GroupVersionResource{Group: "config.sdcio.dev", Version: "v1alpha1", Resource: "configs"}
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// localClusters is the local cluster only, with drift watches on a fake
// dynamic client.
type localClusters struct{ local *cluster.Cluster }

func (f localClusters) Target(context.Context, v1alpha1.Destination) (*cluster.Target, error) {
	return nil, nil
}
func (f localClusters) Clusters() []*cluster.Cluster { return []*cluster.Cluster{f.local} }

func live(t *testing.T, doc string) runtime.Object {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	assert.NilError(t, err)
	u := &unstructured.Unstructured{}
	assert.NilError(t, u.UnmarshalJSON(data))
	u.SetLabels(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	u.SetAnnotations(map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: "net"})
	return u
}

const (
	rollingDeployment = `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 1},
	  spec: {replicas: 2}, status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 1}}`
	readyDeployment = `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 1},
	  spec: {replicas: 2}, status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2}}`
	failedConfig = `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1},
	  status: {conditions: [{type: Ready, status: "False", reason: Failed, message: "leaf1 rejected the config: mtu 9300 out of range"}]}}`
	readyConfig = `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1},
	  status: {conditions: [{type: Ready, status: "True", reason: Ready}]}}`
	plainConfigMap = `{apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: shop}, data: {a: b}}`
)

type healthFixture struct {
	t       *testing.T
	client  *fake.Clientset
	c       *Controller
	clock   *testingclock.FakeClock
	events  *events.FakeRecorder
	applied time.Time
}

// newHealthFixture seeds the drift watches with objects and returns a controller
// whose VidraResources are read from a seeded indexer.
func newHealthFixture(t *testing.T, objects ...runtime.Object) *healthFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		deploymentsGVR: "DeploymentList", configsGVR: "ConfigList", configMapsGVR: "ConfigMapList",
	}, objects...)
	m := watch.NewManager(dc, watch.Options{})
	t.Cleanup(m.Stop)
	m.SetOwnerResources("net", []schema.GroupVersionResource{deploymentsGVR, configsGVR, configMapsGVR})
	for _, gvr := range []schema.GroupVersionResource{deploymentsGVR, configsGVR, configMapsGVR} {
		deadline := time.Now().Add(10 * time.Second)
		for !m.HasSynced(gvr) {
			if time.Now().After(deadline) {
				t.Fatalf("%s informer did not sync", gvr)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	client := fake.NewSimpleClientset()
	// Status applies are recorded, not executed: the fake tracker knows no
	// server-side apply.
	client.PrependReactor("patch", "vidraresources", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &v1alpha1.VidraResource{}, nil
	})
	applied := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakeClock(applied.Add(30 * time.Second))
	rec := events.NewFakeRecorder(20)
	informer := externalversions.NewSharedInformerFactory(client, 0).Infrahub().V1alpha1().VidraResources()
	opts := Options{}
	opts.defaults()
	c := &Controller{
		client:   client,
		lister:   informer.Lister(),
		clusters: localClusters{&cluster.Cluster{Watches: m}},
		recorder: rec,
		clock:    clk,
		opts:     opts,
		health:   newHealthState(),
		queue:    workloop.NewQueue("test", time.Millisecond, time.Second),
	}
	t.Cleanup(c.queue.ShutDown)
	return &healthFixture{t: t, client: client, c: c, clock: clk, events: rec, applied: applied}
}

// resource is a VidraResource whose objects were applied at f.applied.
func (f *healthFixture) resource(wait *v1alpha1.Wait) *v1alpha1.VidraResource {
	vr := &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "net", Generation: 1, ResourceVersion: "7", Finalizers: []string{v1alpha1.VidraResourceFinalizer}},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: "kind: List", Wait: wait},
	}
	at := metav1.NewTime(f.applied)
	vr.Status = v1alpha1.VidraResourceStatus{
		ObservedGeneration:  1,
		LastSyncTime:        &at,
		LastAppliedChecksum: manifestChecksum(vr),
		DeployState:         v1alpha1.StateSucceeded,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonApplied,
			Message: "Applied 3 objects", ObservedGeneration: 1, LastTransitionTime: at}},
		ManagedResources: []v1alpha1.ManagedResource{
			{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", Group: "apps", Version: "v1", Resource: "deployments"},
			{APIVersion: "config.sdcio.dev/v1alpha1", Kind: "Config", Namespace: "network", Name: "leaf1-uplinks", Group: "config.sdcio.dev", Version: "v1alpha1", Resource: "configs"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings", Version: "v1", Resource: "configmaps"},
		},
		ObjectCount: 3,
	}
	return vr
}

func (f *healthFixture) nextEvent() string {
	select {
	case e := <-f.events.Events:
		return e
	default:
		return ""
	}
}

func TestApplyHealthRecordsEveryObjectAndTheSummary(t *testing.T) {
	f := newHealthFixture(t, live(t, rollingDeployment), live(t, failedConfig), live(t, plainConfigMap))
	vr := f.resource(nil)
	status := vr.Status.DeepCopy()
	f.c.applyHealth(vr, status)

	got := map[string][2]string{}
	for _, e := range status.ManagedResources {
		got[e.Kind] = [2]string{e.Health, e.HealthMessage}
	}
	assert.DeepEqual(t, got, map[string][2]string{
		"Deployment": {"InProgress", "1 of 2 replicas available"},
		"Config":     {"Failed", "leaf1 rejected the config: mtu 9300 out of range"},
		"ConfigMap":  {"Current", ""},
	})
	assert.DeepEqual(t, *status.Health, v1alpha1.HealthSummary{Status: "Failed", Current: 1, InProgress: 1, Failed: 1})
	healthy := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionHealthy)
	assert.Equal(t, healthy.Status, metav1.ConditionFalse)
	assert.Equal(t, healthy.Reason, "Failed")
	assert.Equal(t, healthy.Message, "2 of 3 objects not healthy: Config network/leaf1-uplinks (Failed: leaf1 rejected the config: mtu 9300 out of range); "+
		"Deployment shop/web (InProgress: 1 of 2 replicas available)")
	// Without wait, Ready still means applied.
	ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	assert.Equal(t, ready.Status, metav1.ConditionTrue)
	assert.Equal(t, f.nextEvent(), "Warning Unhealthy "+healthy.Message)
	assert.Equal(t, f.nextEvent(), "")
}

func TestHealthPassWritesOnlyWhatChanged(t *testing.T) {
	f := newHealthFixture(t, live(t, readyDeployment), live(t, readyConfig), live(t, plainConfigMap))
	vr := f.resource(nil)

	_, err := f.c.syncHealth(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	actions := f.client.Actions()
	assert.Equal(t, len(actions), 1)
	patch := actions[0].(clienttesting.PatchAction)
	assert.Equal(t, patch.GetSubresource(), "status")
	var body struct {
		Metadata metav1.ObjectMeta            `json:"metadata"`
		Status   v1alpha1.VidraResourceStatus `json:"status"`
	}
	assert.NilError(t, json.Unmarshal(patch.GetPatch(), &body))
	assert.Equal(t, body.Metadata.ResourceVersion, "7", "the write is conditional on the version read")
	assert.DeepEqual(t, *body.Status.Health, v1alpha1.HealthSummary{Status: "Current", Current: 3})
	healthy := meta.FindStatusCondition(body.Status.Conditions, v1alpha1.ConditionHealthy)
	assert.Equal(t, healthy.Status, metav1.ConditionTrue)
	assert.Equal(t, healthy.Message, "All 3 objects are healthy")
	assert.Equal(t, f.nextEvent(), "", "healthy from the start: the condition says so, no Event")

	// The same health again: nothing to write, no event.
	f.client.ClearActions()
	vr.Status = body.Status
	_, err = f.c.syncHealth(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, len(f.client.Actions()), 0)
	assert.Equal(t, f.nextEvent(), "")
}

func TestWaitMakesReadyMeanHealthy(t *testing.T) {
	wait := &v1alpha1.Wait{Timeout: &metav1.Duration{Duration: time.Minute}}
	t.Run("waiting within the timeout", func(t *testing.T) {
		f := newHealthFixture(t, live(t, rollingDeployment), live(t, readyConfig), live(t, plainConfigMap))
		vr := f.resource(wait)
		status := vr.Status.DeepCopy()
		f.c.applyHealth(vr, status)
		ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
		assert.Equal(t, ready.Status, metav1.ConditionFalse)
		assert.Equal(t, ready.Reason, ReasonWaitingForHealth)
		assert.Equal(t, ready.Message, "Applied; waiting up to 1m0s for 1 objects to become healthy: Deployment shop/web (InProgress: 1 of 2 replicas available)")
		assert.Assert(t, meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ConditionReconciling))
		assert.Equal(t, status.DeployState, v1alpha1.StateRunning)
		// The next full pass comes at the end of the wait, not at the interval.
		assert.Equal(t, f.c.afterFull(vr.Name, 10*time.Minute, nil), 30*time.Second)
	})
	t.Run("timed out", func(t *testing.T) {
		f := newHealthFixture(t, live(t, rollingDeployment), live(t, readyConfig), live(t, plainConfigMap))
		vr := f.resource(wait)
		f.clock.SetTime(f.applied.Add(61 * time.Second))
		status := vr.Status.DeepCopy()
		f.c.applyHealth(vr, status)
		ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
		assert.Equal(t, ready.Status, metav1.ConditionFalse)
		assert.Equal(t, ready.Reason, ReasonHealthCheckFailed)
		assert.Equal(t, ready.Message, "Timed out after 1m0s waiting for 1 objects to become healthy: Deployment shop/web (InProgress: 1 of 2 replicas available)")
		assert.Equal(t, status.LastError, ready.Message)
		assert.Equal(t, status.DeployState, v1alpha1.StateFailed)
		assert.Equal(t, f.nextEvent(), "Warning HealthCheckFailed "+ready.Message)
		assert.Equal(t, f.c.afterFull(vr.Name, 10*time.Minute, nil), 10*time.Minute)
	})
	t.Run("a failed object fails the wait at once", func(t *testing.T) {
		f := newHealthFixture(t, live(t, readyDeployment), live(t, failedConfig), live(t, plainConfigMap))
		vr := f.resource(wait)
		status := vr.Status.DeepCopy()
		f.c.applyHealth(vr, status)
		ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
		assert.Equal(t, ready.Reason, ReasonHealthCheckFailed)
		assert.Assert(t, strings.HasPrefix(ready.Message, "Health check failed for 1 objects: Config network/leaf1-uplinks (Failed: "), ready.Message)
	})
	t.Run("healthy", func(t *testing.T) {
		f := newHealthFixture(t, live(t, readyDeployment), live(t, readyConfig), live(t, plainConfigMap))
		vr := f.resource(wait)
		vr.Status.Conditions[0] = metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonWaitingForHealth, ObservedGeneration: 1}
		status := vr.Status.DeepCopy()
		f.c.applyHealth(vr, status)
		ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
		assert.Equal(t, ready.Status, metav1.ConditionTrue)
		assert.Equal(t, ready.Message, "Applied 3 objects, all healthy")
		assert.Assert(t, !meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ConditionReconciling))
	})
	t.Run("an apply failure is what Ready reports", func(t *testing.T) {
		f := newHealthFixture(t, live(t, rollingDeployment), live(t, readyConfig), live(t, plainConfigMap))
		vr := f.resource(wait)
		vr.Status.Conditions[0] = metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonApplyFailed, Message: "1 of 3 objects failed", ObservedGeneration: 1}
		status := vr.Status.DeepCopy()
		f.c.applyHealth(vr, status)
		assert.DeepEqual(t, *meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady), vr.Status.Conditions[0])
	})
}

func TestHealthOnlyWhenTheLastFullPassIsCurrent(t *testing.T) {
	f := newHealthFixture(t)
	vr := f.resource(nil)
	c := f.c
	c.OnManagedObjectHealthChange([]string{"net"})
	assert.Assert(t, !c.healthOnly(vr), "no full pass yet")

	assert.Equal(t, c.afterFull("net", time.Minute, nil), time.Minute)
	c.OnManagedObjectHealthChange([]string{"net"})
	assert.Assert(t, c.healthOnly(vr))
	assert.Assert(t, !c.healthOnly(vr), "the change was served")

	c.OnManagedObjectHealthChange([]string{"net"})
	c.wantFull("net")
	assert.Assert(t, !c.healthOnly(vr), "drift asked for a full pass")

	edited := vr.DeepCopy()
	edited.Generation = 2
	c.OnManagedObjectHealthChange([]string{"net"})
	assert.Assert(t, !c.healthOnly(edited), "spec changed")

	c.OnManagedObjectHealthChange([]string{"net"})
	f.clock.Step(2 * time.Minute)
	assert.Assert(t, !c.healthOnly(vr), "the periodic pass is due")

	_ = c.afterFull("net", 0, context.DeadlineExceeded)
	c.OnManagedObjectHealthChange([]string{"net"})
	assert.Assert(t, !c.healthOnly(vr), "the last pass failed")
}

// A lister behind the stored status (usually behind our own last write)
// makes the conditional write conflict: a full pass follows, and no error
// is counted.
func TestHealthPassConflictBringsAFullPass(t *testing.T) {
	f := newHealthFixture(t, live(t, readyDeployment), live(t, readyConfig), live(t, plainConfigMap))
	f.client.PrependReactor("patch", "vidraresources", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "infrahub.operators.com", Resource: "vidraresources"}, "net", nil)
	})
	vr := f.resource(nil)
	_ = f.c.afterFull("net", time.Minute, nil)
	_, err := f.c.syncHealth(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, f.c.queue.Len(), 1)
	f.c.OnManagedObjectHealthChange([]string{"net"})
	assert.Assert(t, !f.c.healthOnly(vr), "the next pass is a full one")
}

// Healthy again after being unhealthy is news: one Normal Event.
func TestRecoveryToHealthyIsAnEvent(t *testing.T) {
	f := newHealthFixture(t, live(t, readyDeployment), live(t, readyConfig), live(t, plainConfigMap))
	vr := f.resource(nil)
	vr.Status.Conditions = append(vr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionHealthy, Status: metav1.ConditionFalse,
		Reason: v1alpha1.HealthInProgress, Message: "1 of 3 objects not healthy", ObservedGeneration: 1})

	_, err := f.c.syncHealth(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, f.nextEvent(), "Normal Healthy All 3 objects are healthy")
}
