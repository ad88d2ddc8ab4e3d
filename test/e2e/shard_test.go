package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// TestShardsSplitAndHandOver runs two operator processes on one control
// plane, one per shard (shard1, and the main instance taking every other
// sync). Each converges only its shard's sync, nothing is written by both
// (each process's own apply counters and logs), and a sync moved to the
// other shard by relabelling is handed over: its objects keep their UIDs,
// nothing is pruned, and the new instance applies its next change.
func TestShardsSplitAndHandOver(t *testing.T) {
	c := newClients(t)
	t.Cleanup(func() { forceClean(t, c) })
	fake := newFake(t, c)
	const nsOne, nsMain = "e2e-shard1", "e2e-shardmain"
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Shard1_Manifest", TargetLabel: "one", Content: webArtifact(nsOne, "one", 1, false)})
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Main_Manifest", TargetLabel: "main", Content: webArtifact(nsMain, "main", 1, false)})

	selOne := shard.Label + " in (shard1)"
	selMain := shard.Label + " notin (shard1)"
	// Each instance elects its leader on a Lease of its own, named after
	// its selector (-leader-election-id not given).
	leases := map[string]string{"e2e-shard1": leaseOf(t, selOne), "e2e-shardmain": leaseOf(t, selMain)}
	assert.Assert(t, leases["e2e-shard1"] != leases["e2e-shardmain"])
	grantLeases(t, c, leases["e2e-shard1"], leases["e2e-shardmain"])
	elect := []string{"-leader-elect", "-leader-election-lease-duration=4s", "-leader-election-renew-deadline=3s", "-leader-election-retry-period=500ms"}
	opOne := startOperator(t, "e2e-shard1", append(elect, "-watch-label-selector="+selOne)...)
	opMain := startOperator(t, "e2e-shardmain", append(elect, "-watch-label-selector="+selMain)...)
	for name, lease := range leases {
		eventually(t, time.Minute, name+" leads its shard", func() (bool, error) {
			l, err := c.kube.CoordinationV1().Leases(operatorNamespace).Get(t.Context(), lease, metav1.GetOptions{})
			return err == nil && l.Spec.HolderIdentity != nil && strings.HasPrefix(*l.Spec.HolderIdentity, name+"_"), nil
		})
	}
	opOne.waitReady(time.Minute)
	opMain.waitReady(time.Minute)
	for _, p := range []*operatorProcess{opOne, opMain} {
		v, _ := p.scrape().Value("vidra_leader", nil)
		assert.Equal(t, v, 1.0, "%s does not lead", p.name)
	}

	newShardedSync(t, c, fake, "sync-one", "Shard1_Manifest", "shard1")
	newShardedSync(t, c, fake, "sync-main", "Main_Manifest", "")
	eventually(t, 2*time.Minute, "both syncs Ready", func() (bool, error) {
		a, _ := syncReady(c, "sync-one")
		b, _ := syncReady(c, "sync-main")
		return a && b, nil
	})
	eventually(t, time.Minute, "both Deployments", func() (bool, error) {
		_, e1 := c.kube.AppsV1().Deployments(nsOne).Get(t.Context(), "one", metav1.GetOptions{})
		_, e2 := c.kube.AppsV1().Deployments(nsMain).Get(t.Context(), "main", metav1.GetOptions{})
		return e1 == nil && e2 == nil, nil
	})

	// The VidraResources carry their sync's shard.
	vrOne := resourcesOf(t, c, "sync-one")
	assert.Equal(t, len(vrOne), 1)
	assert.Equal(t, vrOne[0].Labels[shard.Label], "shard1")
	vrMain := resourcesOf(t, c, "sync-main")
	assert.Equal(t, len(vrMain), 1)
	_, labelled := vrMain[0].Labels[shard.Label]
	assert.Assert(t, !labelled)

	// Each process created exactly its own shard's objects (Namespace,
	// Deployment, ConfigMap): nothing was created twice.
	created := func(p *operatorProcess) float64 {
		return p.scrape().Sum("vidra_apply_operations_total", map[string]string{"result": "created"})
	}
	assert.Equal(t, created(opOne), 3.0)
	assert.Equal(t, created(opMain), 3.0)
	for _, p := range []*operatorProcess{opOne, opMain} {
		want := selOne
		if p == opMain {
			want = selMain
		}
		v, ok := p.scrape().Value("vidra_shard_info", map[string]string{"selector": want})
		assert.Assert(t, ok && v == 1, "%s: vidra_shard_info{selector=%q}", p.name, want)
	}
	assertOnlyHandled(t, opOne, "sync-one", vrOne[0].Name, "sync-main", vrMain[0].Name)
	assertOnlyHandled(t, opMain, "sync-main", vrMain[0].Name, "sync-one", vrOne[0].Name)

	// Move sync-one to the main instance.
	uids := objectUIDs(t, c, nsOne, "one")
	vrUID := vrOne[0].UID
	oneBefore := opOne.scrape()
	sync, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(t.Context(), "sync-one", metav1.GetOptions{})
	assert.NilError(t, err)
	delete(sync.Labels, shard.Label)
	_, err = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Update(t.Context(), sync, metav1.UpdateOptions{})
	assert.NilError(t, err)

	eventually(t, time.Minute, "the VidraResource relabelled and handled by the main instance", func() (bool, error) {
		vrs := resourcesOf(t, c, "sync-one")
		if len(vrs) != 1 {
			return false, nil
		}
		if _, still := vrs[0].Labels[shard.Label]; still {
			return false, nil
		}
		d, _ := opMain.scrape().Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "Deployment"})
		return d == 2, nil
	})
	eventually(t, 30*time.Second, "shard1's instance forgets it", func() (bool, error) {
		d, _ := opOne.scrape().Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "Deployment"})
		return d == 0, nil
	})

	// Nothing was deleted or recreated.
	vrs := resourcesOf(t, c, "sync-one")
	assert.Equal(t, vrs[0].UID, vrUID)
	assert.Assert(t, vrs[0].DeletionTimestamp == nil)
	assert.DeepEqual(t, vrs[0].Finalizers, []string{v1alpha1.VidraResourceFinalizer})
	assert.DeepEqual(t, objectUIDs(t, c, nsOne, "one"), uids)
	for _, p := range []*operatorProcess{opOne, opMain} {
		f := p.scrape()
		assert.Equal(t, f.Sum("vidra_apply_operations_total", map[string]string{"result": "pruned"}), 0.0, "%s pruned", p.name)
		assert.Equal(t, f.Sum("vidra_apply_operations_total", map[string]string{"result": "released"}), 0.0, "%s released", p.name)
	}
	// The previous instance wrote nothing after the move.
	oneAfter := opOne.scrape()
	for _, result := range []string{"created", "configured"} {
		m := map[string]string{"result": result}
		assert.Equal(t, oneAfter.Sum("vidra_apply_operations_total", m), oneBefore.Sum("vidra_apply_operations_total", m), result)
	}
	eventually(t, time.Minute, "sync-one Ready under the main instance", func() (bool, error) { return syncReady(c, "sync-one") })

	// Its next change is applied by the main instance.
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Shard1_Manifest", TargetLabel: "one", Content: webArtifact(nsOne, "one", 2, false)})
	eventually(t, time.Minute, "2 replicas", func() (bool, error) {
		d, err := c.kube.AppsV1().Deployments(nsOne).Get(t.Context(), "one", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 2, nil
	})
	m := map[string]string{"result": "configured"}
	// The counters move once the whole manifest is applied, a moment after
	// the Deployment shows the change.
	eventually(t, 30*time.Second, "the main instance counts what it configured", func() (bool, error) {
		return opMain.scrape().Sum("vidra_apply_operations_total", m) > 0, nil
	})
	assert.Equal(t, opOne.scrape().Sum("vidra_apply_operations_total", m), oneBefore.Sum("vidra_apply_operations_total", m))
	assert.DeepEqual(t, objectUIDs(t, c, nsOne, "one"), uids)

	tookOver := false
	for _, line := range opMain.logLines() {
		tookOver = tookOver || (line["msg"] == "Took over VidraResource from another shard" && line["vidraresource"] == vrOne[0].Name && line["fromShard"] == "shard1")
	}
	assert.Assert(t, tookOver, "the main instance did not log the take-over")

	// And the other way: sync-main moves into shard1.
	mainUIDs := objectUIDs(t, c, nsMain, "main")
	sync, err = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(t.Context(), "sync-main", metav1.GetOptions{})
	assert.NilError(t, err)
	sync.Labels = map[string]string{shard.Label: "shard1"}
	_, err = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Update(t.Context(), sync, metav1.UpdateOptions{})
	assert.NilError(t, err)
	eventually(t, time.Minute, "sync-main handled by shard1's instance", func() (bool, error) {
		vrs := resourcesOf(t, c, "sync-main")
		if len(vrs) != 1 || vrs[0].Labels[shard.Label] != "shard1" {
			return false, nil
		}
		d1, _ := opOne.scrape().Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "Deployment"})
		d0, _ := opMain.scrape().Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "Deployment"})
		return d1 == 1 && d0 == 1, nil
	})
	assert.Equal(t, resourcesOf(t, c, "sync-main")[0].UID, vrMain[0].UID)
	assert.DeepEqual(t, objectUIDs(t, c, nsMain, "main"), mainUIDs)
	eventually(t, time.Minute, "sync-main Ready under shard1's instance", func() (bool, error) { return syncReady(c, "sync-main") })
	for _, p := range []*operatorProcess{opOne, opMain} {
		assert.Equal(t, p.scrape().Sum("vidra_apply_operations_total", map[string]string{"result": "pruned"}), 0.0, "%s pruned", p.name)
	}

	// The operator's own log lines name the shard (client-go's global
	// klog lines cannot).
	for _, p := range []*operatorProcess{opOne, opMain} {
		own := 0
		for _, line := range p.logLines() {
			_, aboutSync := line["sync"]
			_, aboutVR := line["vidraResource"]
			if aboutSync || aboutVR || line["msg"] == "Settings" {
				own++
				assert.Assert(t, line["shard"] != nil, "%s: a log line without the shard: %v", p.name, line)
			}
		}
		assert.Assert(t, own > 2, "%s: %d lines of its own", p.name, own)
	}
	deleteSyncs(t, c)
}

// leaseOf is the Lease an instance with this selector uses by default.
func leaseOf(t *testing.T, selector string) string {
	t.Helper()
	sel, err := shard.Parse(selector)
	assert.NilError(t, err)
	return sel.LeaseName(leaseName)
}

// grantLeases lets the operator's ServiceAccount renew the named Leases,
// as the chart's Role does for its shards (the manifests grant only the
// unsharded one).
func grantLeases(t *testing.T, c clients, names ...string) {
	t.Helper()
	const role = "vidra-operator-shard-leases"
	_, err := c.kube.RbacV1().Roles(operatorNamespace).Create(t.Context(), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			ResourceNames: names, Verbs: []string{"get", "update", "patch"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = c.kube.RbacV1().RoleBindings(operatorNamespace).Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: operatorNamespace}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.kube.RbacV1().RoleBindings(operatorNamespace).Delete(ctx, role, metav1.DeleteOptions{})
		_ = c.kube.RbacV1().Roles(operatorNamespace).Delete(ctx, role, metav1.DeleteOptions{})
		for _, n := range names {
			_ = c.kube.CoordinationV1().Leases(operatorNamespace).Delete(ctx, n, metav1.DeleteOptions{})
		}
	})
}

// newShardedSync creates an InfrahubSync polling every 2 s, in shardName
// ("" for none).
func newShardedSync(t *testing.T, c clients, fake *infrahubtest.Server, name, artifactName, shardName string) {
	t.Helper()
	s := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{
				InfrahubAPIURL:       fake.URL,
				TargetBranch:         "main",
				ArtifactName:         artifactName,
				CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: credsSecret},
			},
			Destination: v1alpha1.Destination{Namespace: "default"},
			Interval:    &metav1.Duration{Duration: 2 * time.Second},
		},
	}
	if shardName != "" {
		s.Labels = map[string]string{shard.Label: shardName}
	}
	_, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(t.Context(), s, metav1.CreateOptions{})
	assert.NilError(t, err)
}

// objectUIDs are the UIDs of the Namespace, Deployment and ConfigMap of
// webArtifact(ns, name, ...).
func objectUIDs(t *testing.T, c clients, ns, name string) []types.UID {
	t.Helper()
	ctx := context.Background()
	n, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	assert.NilError(t, err)
	d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	assert.NilError(t, err)
	cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name+"-config", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		t.Fatalf("ConfigMap %s/%s-config is gone", ns, name)
	}
	assert.NilError(t, err)
	for _, o := range []metav1.Object{n, d, cm} {
		assert.Assert(t, o.GetDeletionTimestamp() == nil, "%s is being deleted", o.GetName())
	}
	return []types.UID{n.UID, d.UID, cm.UID}
}

// assertOnlyHandled checks from a process's log that it listed and applied
// for its own sync and never for the other shard's.
func assertOnlyHandled(t *testing.T, p *operatorProcess, sync, vr, otherSync, otherVR string) {
	t.Helper()
	var listedOwn, appliedOwn bool
	for _, line := range p.logLines() {
		msg, _ := line["msg"].(string)
		if s, _ := line["sync"].(string); strings.HasPrefix(msg, "InfrahubSync listed") {
			assert.Assert(t, s != otherSync, "%s listed %s: %v", p.name, otherSync, line)
			listedOwn = listedOwn || s == sync
		}
		if name, _ := line["vidraResource"].(string); strings.HasPrefix(msg, "VidraResource ") {
			assert.Assert(t, name != otherVR, "%s applied %s: %v", p.name, otherVR, line)
			appliedOwn = appliedOwn || name == vr
		}
	}
	assert.Assert(t, listedOwn, "%s never listed %s", p.name, sync)
	assert.Assert(t, appliedOwn, "%s never applied %s", p.name, vr)
}
