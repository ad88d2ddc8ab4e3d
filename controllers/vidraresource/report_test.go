package vidraresource

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
)

func TestDestinationFailure(t *testing.T) {
	dest := v1alpha1.Destination{Server: "https://edge.example.com:6443", KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "edge-kubeconfig"}}
	unauthorized := apierrors.NewUnauthorized("the server has asked for the client to provide credentials")
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}

	// 401 on every object: one condition naming the cluster and the Secret.
	r, ok := destinationFailure(dest, []error{unauthorized, unauthorized, unauthorized, unauthorized}, 4)
	assert.Assert(t, ok)
	assert.Equal(t, r.Reason, ReasonClusterCredentials)
	assert.Assert(t, strings.Contains(r.Message, "https://edge.example.com:6443"), r.Message)
	assert.Assert(t, strings.Contains(r.Message, `Secret edge-kubeconfig (key "kubeconfig")`), r.Message)
	assert.Assert(t, strings.Contains(r.Message, "4 objects were not applied"), r.Message)
	assert.Equal(t, strings.Count(r.Message, "provide credentials"), 0, "no per-object errors: %s", r.Message)
	assert.Assert(t, len(conditions.Summary(r)) <= v1alpha1.MaxSummary)

	// Unreachable: ClusterUnavailable, with the label-found Secret named.
	r, ok = destinationFailure(v1alpha1.Destination{Server: "https://10.0.0.9:6443"}, []error{refused, refused}, 2)
	assert.Assert(t, ok)
	assert.Equal(t, r.Reason, ReasonClusterUnavailable)
	assert.Assert(t, strings.Contains(r.Message, "cluster-kubeconfig=10.0.0.9"), r.Message)

	// Errors about single objects stay per object.
	_, ok = destinationFailure(dest, []error{refused, apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "x", nil)}, 2)
	assert.Assert(t, !ok)
	_, ok = destinationFailure(dest, nil, 2)
	assert.Assert(t, !ok)
}

func TestTargetFailure(t *testing.T) {
	dest := v1alpha1.Destination{Server: "https://edge.example.com:6443", KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "edge", Key: "cfg"}}
	r := targetFailure(dest, errors.New(`kubeconfig Secret vidra-system/edge key "cfg" not found`))
	assert.Equal(t, r.Reason, ReasonClusterCredentials)
	assert.Assert(t, strings.Contains(r.Message, `Secret edge (key "cfg")`), r.Message)
}

func TestChangeSummaryPluralises(t *testing.T) {
	changes := func(actions ...apply.Action) *outcome {
		out := &outcome{}
		for _, a := range actions {
			out.changes = append(out.changes, apply.Change{Action: a})
		}
		return out
	}
	assert.Equal(t, changeSummary(changes(apply.Created, apply.Created, apply.Created, apply.Created)), "4 objects created")
	assert.Equal(t, changeSummary(changes(apply.Created, apply.Configured, apply.Pruned, apply.Pruned, apply.Unchanged)),
		"1 object created, 1 object configured, 2 objects pruned")
	r := summarize(&outcome{}, 1)
	assert.Equal(t, r.Message, "Applied 1 object")
	r = summarize(&outcome{failures: []string{"a: x"}}, 1)
	assert.Equal(t, conditions.Summary(r), "1 of 1 object failed")
}
