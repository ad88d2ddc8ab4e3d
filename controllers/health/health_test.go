package health

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON, as objects come from the API server: integers stay int64.
	data, err := yaml.YAMLToJSON([]byte(doc))
	assert.NilError(t, err, doc)
	u := &unstructured.Unstructured{}
	assert.NilError(t, u.UnmarshalJSON(data), doc)
	return u
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want Result
	}{
		// Generic rules.
		{"being deleted", `{apiVersion: v1, kind: ConfigMap, metadata: {name: c, deletionTimestamp: "2026-01-01T00:00:00Z"}}`, Result{InProgress, "being deleted"}},
		{"generation not observed", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 3}, spec: {replicas: 2}, status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}}`, Result{InProgress, "generation 3 not observed yet (observed 2)"}},
		{"configmap", `{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {a: b}}`, Result{Current, ""}},
		{"stalled", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Stalled, status: "True", reason: BadSpec, message: "size must be positive"}]}}`, Result{Failed, "size must be positive"}},
		{"ready false waiting", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Ready, status: "False", reason: Waiting, message: "dependency missing"}]}}`, Result{InProgress, "Ready is False: dependency missing"}},
		{"ready false failed", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Ready, status: "False", reason: InstallFailed, message: "chart not found"}]}}`, Result{Failed, "chart not found"}},
		{"available unknown", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Available, status: Unknown, reason: Pending}]}}`, Result{InProgress, "Available is Unknown"}},
		{"ready true", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w, generation: 2}, status: {observedGeneration: 2, conditions: [{type: Ready, status: "True", reason: Succeeded, message: "all good"}]}}`, Result{Current, "all good"}},
		{"reconciling", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Reconciling, status: "True", reason: Progressing, message: "scaling"}]}}`, Result{InProgress, "scaling"}},

		// Workloads.
		{"deployment rolling out", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, replicas: 3, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3}}`, Result{InProgress, "1 of 3 replicas updated"}},
		{"deployment old replicas", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3}}`, Result{InProgress, "1 old replicas pending termination"}},
		{"deployment unavailable", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 1}, spec: {replicas: 3}, status: {observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 1}}`, Result{InProgress, "1 of 3 replicas available"}},
		{"deployment available", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 1}, spec: {replicas: 3}, status: {observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, conditions: [{type: Available, status: "True"}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`, Result{Current, "3/3 replicas available"}},
		{"deployment just created", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 1}, spec: {replicas: 1}}`, Result{InProgress, "0 of 1 replicas updated"}},
		{"deployment deadline", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, generation: 1}, spec: {replicas: 1}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: "ReplicaSet \"web-5d\" has timed out progressing."}]}}`, Result{Failed, `ReplicaSet "web-5d" has timed out progressing.`}},
		{"statefulset not ready", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db, generation: 1}, spec: {replicas: 3}, status: {observedGeneration: 1, replicas: 3, readyReplicas: 2}}`, Result{InProgress, "2 of 3 replicas ready"}},
		{"statefulset updating", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 2, updateStrategy: {type: RollingUpdate}}, status: {observedGeneration: 2, replicas: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: db-6c, updateRevision: db-7f}}`, Result{InProgress, "rolling update to revision db-7f in progress"}},
		{"statefulset ready", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, replicas: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: db-7f, updateRevision: db-7f}}`, Result{Current, "2/2 replicas ready"}},
		{"daemonset updating", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent, generation: 4}, status: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberAvailable: 3}}`, Result{InProgress, "2 of 3 pods updated"}},
		{"daemonset ready", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent, generation: 4}, status: {observedGeneration: 4, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}}`, Result{Current, "3/3 pods available"}},
		{"job running", `{apiVersion: batch/v1, kind: Job, metadata: {name: migrate}, status: {active: 1}}`, Result{InProgress, "running: 0 succeeded, 1 active"}},
		{"job complete", `{apiVersion: batch/v1, kind: Job, metadata: {name: migrate}, status: {succeeded: 1, conditions: [{type: SuccessCriteriaMet, status: "True"}, {type: Complete, status: "True"}]}}`, Result{Current, "complete"}},
		{"job failed", `{apiVersion: batch/v1, kind: Job, metadata: {name: migrate}, status: {failed: 6, conditions: [{type: Failed, status: "True", reason: BackoffLimitExceeded, message: "Job has reached the specified backoff limit"}]}}`, Result{Failed, "Job has reached the specified backoff limit"}},
		{"pvc pending", `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data}, status: {phase: Pending}}`, Result{InProgress, "phase Pending"}},
		{"pvc bound", `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data}, status: {phase: Bound}}`, Result{Current, "bound"}},
		{"pvc lost", `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data}, status: {phase: Lost}}`, Result{Failed, "lost its volume"}},
		{"service clusterip", `{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {type: ClusterIP, ports: [{port: 80}]}}`, Result{Current, ""}},
		{"service lb pending", `{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {type: LoadBalancer}, status: {loadBalancer: {}}}`, Result{InProgress, "waiting for a load balancer address"}},
		{"service lb ready", `{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {type: LoadBalancer}, status: {loadBalancer: {ingress: [{ip: 192.0.2.10}]}}}`, Result{Current, "load balancer ready"}},

		// KubeVirt.
		{"kubevirt starting", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01, generation: 1}, spec: {runStrategy: Always}, status: {observedGeneration: 1, printableStatus: Starting, created: true}}`, Result{InProgress, "Starting"}},
		{"kubevirt no status", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01, generation: 1}, spec: {runStrategy: Always}}`, Result{InProgress, "not started yet"}},
		{"kubevirt running", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01, generation: 1}, spec: {runStrategy: Always}, status: {observedGeneration: 1, printableStatus: Running, ready: true, created: true, conditions: [{type: Ready, status: "True"}]}}`, Result{Current, "Running"}},
		{"kubevirt image pull", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01, generation: 1}, spec: {runStrategy: Always}, status: {observedGeneration: 1, printableStatus: ImagePullBackOff}}`, Result{Failed, "ImagePullBackOff"}},
		{"kubevirt halted", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01, generation: 1}, spec: {runStrategy: Halted}, status: {observedGeneration: 1, printableStatus: Stopped}}`, Result{Current, "Stopped"}},
		{"kubevirt failure condition", `{apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: db01}, spec: {running: true}, status: {printableStatus: Starting, conditions: [{type: Failure, status: "True", reason: FailedCreate, message: "insufficient memory"}]}}`, Result{Failed, "insufficient memory"}},

		// VirtRigaud.
		{"virtrigaud provisioning", `{apiVersion: infra.virtrigaud.io/v1beta1, kind: VirtualMachine, metadata: {name: app01, generation: 1}, spec: {powerState: "On"}, status: {observedGeneration: 1, phase: Provisioning, conditions: [{type: Ready, status: "False", reason: Provisioning, message: "cloning template"}]}}`, Result{InProgress, "phase Provisioning: cloning template"}},
		{"virtrigaud running", `{apiVersion: infra.virtrigaud.io/v1beta1, kind: VirtualMachine, metadata: {name: app01, generation: 1}, spec: {powerState: "On"}, status: {observedGeneration: 1, phase: Running, powerState: "On", conditions: [{type: Ready, status: "True", reason: Ready}]}}`, Result{Current, "Running"}},
		{"virtrigaud failed", `{apiVersion: infra.virtrigaud.io/v1beta1, kind: VirtualMachine, metadata: {name: app01, generation: 1}, spec: {powerState: "On"}, status: {observedGeneration: 1, phase: Failed, conditions: [{type: Ready, status: "False", reason: ProviderError, message: "datastore full"}]}}`, Result{Failed, "phase Failed: datastore full"}},
		{"virtrigaud stopped as asked", `{apiVersion: infra.virtrigaud.io/v1beta1, kind: VirtualMachine, metadata: {name: app01}, spec: {powerState: "Off"}, status: {phase: Stopped, powerState: "Off"}}`, Result{Current, "Stopped"}},
		{"virtrigaud pending", `{apiVersion: infra.virtrigaud.io/v1beta1, kind: VirtualMachine, metadata: {name: app01}, spec: {powerState: "On"}}`, Result{InProgress, "phase Pending"}},

		// Crossplane.
		{"crossplane object ready", `{apiVersion: kubernetes.crossplane.io/v1alpha2, kind: Object, metadata: {name: o}, spec: {forProvider: {manifest: {}}}, status: {conditions: [{type: Synced, status: "True", reason: ReconcileSuccess}, {type: Ready, status: "True", reason: Available}]}}`, Result{Current, "Available"}},
		{"crossplane object creating", `{apiVersion: kubernetes.crossplane.io/v1alpha2, kind: Object, metadata: {name: o}, spec: {forProvider: {manifest: {}}}, status: {conditions: [{type: Synced, status: "True", reason: ReconcileSuccess}, {type: Ready, status: "False", reason: Creating}]}}`, Result{InProgress, "Creating"}},
		{"crossplane object not synced", `{apiVersion: kubernetes.crossplane.io/v1alpha2, kind: Object, metadata: {name: o}, spec: {forProvider: {manifest: {}}}, status: {conditions: [{type: Synced, status: "False", reason: ReconcileError, message: "cannot get provider config"}]}}`, Result{Failed, "not synced: cannot get provider config"}},
		{"crossplane fresh", `{apiVersion: kubernetes.m.crossplane.io/v1alpha1, kind: Object, metadata: {name: o, namespace: n}, spec: {forProvider: {manifest: {}}}}`, Result{InProgress, "not yet reconciled by its provider"}},
		{"upjet managed resource", `{apiVersion: s3.aws.upbound.io/v1beta1, kind: Bucket, metadata: {name: b}, spec: {forProvider: {region: eu-west-1}}, status: {conditions: [{type: Synced, status: "True"}, {type: Ready, status: "True", reason: Available}]}}`, Result{Current, "Available"}},

		// SDC network configuration.
		{"sdc config new", `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1}, spec: {priority: 20, config: []}}`, Result{InProgress, "not yet applied to the device"}},
		{"sdc config ready", `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1}, status: {conditions: [{type: Ready, status: "True", reason: Ready}]}}`, Result{Current, "ready"}},
		{"sdc config failed", `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1}, status: {conditions: [{type: Ready, status: "False", reason: Failed, message: "target leaf1 rejected: invalid mtu 9300"}]}}`, Result{Failed, "target leaf1 rejected: invalid mtu 9300"}},
		{"sdc config target not ready", `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1-uplinks, namespace: network, generation: 1}, status: {conditions: [{type: Ready, status: "False", reason: Unknown, message: "target not ready"}]}}`, Result{InProgress, "Unknown: target not ready"}},
		{"kubenet interface", `{apiVersion: device.network.kubenet.dev/v1alpha1, kind: Interface, metadata: {name: dc-ams1.leaf1.1.49, namespace: network}, spec: {node: leaf1, mtu: 9214}}`, Result{Current, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, Of(object(t, tc.doc)), tc.want)
		})
	}
	assert.Equal(t, Of(nil).Status, Unknown)
}

func TestMessageIsBounded(t *testing.T) {
	u := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Stalled, status: "True"}]}}`)
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	conds[0].(map[string]any)["message"] = strings.Repeat("é", 400)
	assert.NilError(t, unstructured.SetNestedSlice(u.Object, conds, "status", "conditions"))
	r := Of(u)
	assert.Equal(t, r.Status, Failed)
	assert.Assert(t, len(r.Message) <= MaxMessage, len(r.Message))
	assert.Assert(t, strings.HasSuffix(r.Message, "..."))
}

func TestWorse(t *testing.T) {
	order := []Status{Current, Unknown, InProgress, Failed}
	for i := range order {
		for j := range order {
			assert.Equal(t, Worse(order[i], order[j]), i > j, "%s vs %s", order[i], order[j])
		}
	}
}
