package main

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestObjectHealth(t *testing.T) {
	for _, tc := range []struct {
		yaml, state, msg string
	}{
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 1, updatedReplicas: 2}}`, stateInProgress, "1/2 replicas ready"},
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2}}`, stateReady, "2/2 replicas ready"},
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 3}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2}}`, stateInProgress, "generation 3 not observed yet"},
		{`{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: d}, status: {desiredNumberScheduled: 3, numberReady: 3}}`, stateReady, "3/3 pods ready"},
		{`{apiVersion: batch/v1, kind: Job, metadata: {name: j}, status: {conditions: [{type: Failed, status: "True"}]}}`, stateFailed, "job failed"},
		{`{apiVersion: batch/v1, kind: Job, metadata: {name: j}, status: {conditions: [{type: Complete, status: "True"}]}}`, stateReady, "complete"},
		{`{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: p}, status: {phase: Pending}}`, stateInProgress, "phase Pending"},
		{`{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}`, stateReady, ""},
		{`{apiVersion: v1, kind: ConfigMap, metadata: {name: c, deletionTimestamp: "2026-01-01T00:00:00Z"}}`, stateTerminating, "being deleted"},
		{`{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Ready, status: "False"}]}}`, stateInProgress, "Ready condition is False"},
	} {
		state, msg := objectHealth(obj(t, tc.yaml))
		assert.Equal(t, state, tc.state, tc.yaml)
		assert.Equal(t, msg, tc.msg, tc.yaml)
	}
	state, _ := objectHealth(nil)
	assert.Equal(t, state, stateMissing)
}
