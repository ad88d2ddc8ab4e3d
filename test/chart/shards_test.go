package chart

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vidra-operator/vidra/controllers/shard"
)

// TestShardsRender: shards render one Deployment each besides the main
// one, each with its own Lease (allowed by the Role) and a selector that
// takes exactly its shard's syncs; the main one takes every other sync;
// the Deployments' pods do not overlap; each shard has its webhook
// Service. The server accepts all of it.
func TestShardsRender(t *testing.T) {
	const ns = "vidra-chart-shards"
	ensureNamespace(t, ns, nil)
	text, objs := render(t, ns, "--set", "shards={shard1,shard2}", "--set", "webhook.enabled=true", "--set", "replicaCount=2")
	serverDryRun(t, text)

	type instance struct {
		lease    string
		selector *shard.Selector
		pods     labels.Set
		deploy   *appsv1.Deployment
	}
	instances := map[string]instance{}
	for _, name := range []string{"vidra", "vidra-shard1", "vidra-shard2"} {
		u := find(objs, "Deployment", name)
		assert.Assert(t, u != nil, "no Deployment %s", name)
		dep := into[appsv1.Deployment](t, u)
		assert.Equal(t, *dep.Spec.Replicas, int32(2))
		var in instance
		in.deploy = dep
		in.pods = dep.Spec.Template.Labels
		for _, arg := range dep.Spec.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(arg, "-leader-election-id="); ok {
				in.lease = v
			}
			if v, ok := strings.CutPrefix(arg, "-watch-label-selector="); ok {
				sel, err := shard.Parse(v)
				assert.NilError(t, err, "%s: %s", name, arg)
				in.selector = sel
			}
		}
		assert.Assert(t, in.selector.Sharded(), "%s has no -watch-label-selector", name)
		assert.Assert(t, in.lease != "", "%s has no lease", name)
		instances[name] = in
	}

	// Distinct leases, each one the Role lets the operator renew.
	leases := map[string]bool{}
	for _, in := range instances {
		leases[in.lease] = true
	}
	assert.Equal(t, len(leases), 3)
	granted := map[string]bool{}
	for _, u := range all(objs, "Role") {
		for _, r := range into[rbacv1.Role](t, u).Rules {
			if len(r.Resources) == 1 && r.Resources[0] == "leases" {
				for _, n := range r.ResourceNames {
					granted[n] = true
				}
			}
		}
	}
	for lease := range leases {
		assert.Assert(t, granted[lease], "the Role does not grant lease %s: %v", lease, granted)
	}

	// Every sync is handled by exactly one instance: the labelled ones by
	// their shard, the others (no label, an unknown shard) by the main one.
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{shard.Label: "shard1"}, "vidra-shard1"},
		{map[string]string{shard.Label: "shard2"}, "vidra-shard2"},
		{nil, "vidra"},
		{map[string]string{shard.Label: "shard3"}, "vidra"},
	} {
		var matched []string
		for name, in := range instances {
			if in.selector.Matches(tc.labels) {
				matched = append(matched, name)
			}
		}
		assert.DeepEqual(t, matched, []string{tc.want})
	}

	// A shard Deployment's selector takes only its own pods.
	for name, in := range instances {
		sel := labels.SelectorFromSet(in.deploy.Spec.Selector.MatchLabels)
		assert.Assert(t, sel.Matches(in.pods), "%s does not select its pods", name)
		if name == "vidra" {
			continue
		}
		for other, o := range instances {
			if other != name {
				assert.Assert(t, !sel.Matches(o.pods), "%s selects the pods of %s", name, other)
			}
		}
	}

	// One webhook Service per instance, each selecting its pods only.
	for svcName, owner := range map[string]string{"vidra-webhook": "vidra", "vidra-webhook-shard1": "vidra-shard1", "vidra-webhook-shard2": "vidra-shard2"} {
		u := find(objs, "Service", svcName)
		assert.Assert(t, u != nil, "no Service %s", svcName)
		sel := labels.SelectorFromSet(into[corev1.Service](t, u).Spec.Selector)
		for name, in := range instances {
			assert.Equal(t, sel.Matches(in.pods), name == owner, "Service %s and the pods of %s", svcName, name)
		}
	}

	// Without shards nothing changes: one Deployment, no selector.
	_, plain := render(t, ns)
	assert.Equal(t, len(all(plain, "Deployment")), 1)
	for _, arg := range into[appsv1.Deployment](t, find(plain, "Deployment", "vidra")).Spec.Template.Spec.Containers[0].Args {
		assert.Assert(t, !strings.HasPrefix(arg, "-watch-label-selector"), arg)
	}
}
