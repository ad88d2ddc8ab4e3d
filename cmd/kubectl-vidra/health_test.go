package main

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestObjectHealth(t *testing.T) {
	for _, tc := range []struct {
		yaml, state, msg string
	}{
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, replicas: 2, availableReplicas: 1, updatedReplicas: 2}}`, stateInProgress, "1 of 2 replicas available"},
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, replicas: 2, availableReplicas: 2, updatedReplicas: 2}}`, stateReady, "2/2 replicas available"},
		{`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, generation: 3}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2}}`, stateInProgress, "generation 3 not observed yet (observed 2)"},
		{`{apiVersion: batch/v1, kind: Job, metadata: {name: j}, status: {conditions: [{type: Failed, status: "True"}]}}`, stateFailed, "job failed"},
		{`{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1, namespace: network}, status: {conditions: [{type: Ready, status: "False", reason: Failed, message: "device rejected"}]}}`, stateFailed, "device rejected"},
		{`{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}`, stateReady, ""},
		{`{apiVersion: v1, kind: ConfigMap, metadata: {name: c, deletionTimestamp: "2026-01-01T00:00:00Z"}}`, stateTerminating, "being deleted"},
	} {
		state, msg := objectHealth(obj(t, tc.yaml))
		assert.Equal(t, state, tc.state, tc.yaml)
		assert.Equal(t, msg, tc.msg, tc.yaml)
	}
	state, _ := objectHealth(nil)
	assert.Equal(t, state, stateMissing)
}
