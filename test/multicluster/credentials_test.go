package multicluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/test/controlplane"
)

// TestRefusedKubeconfigIsOneCondition: a destination that refuses the
// kubeconfig's credentials is reported as one ClusterCredentials condition
// naming the cluster and the Secret, not as one error per object.
func TestRefusedKubeconfigIsOneCondition(t *testing.T) {
	ctx := context.Background()
	remote := controlplane.StartForTest(t, controlplane.Config{Name: "refusing"})
	rc := remote.RESTConfig()
	ca := rc.CAData
	if len(ca) == 0 && rc.CAFile != "" {
		var err error
		ca, err = os.ReadFile(rc.CAFile)
		assert.NilError(t, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["remote"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["stale"] = &clientcmdapi.AuthInfo{Token: "revoked-token"}
	kc.Contexts["remote"] = &clientcmdapi.Context{Cluster: "remote", AuthInfo: "stale"}
	kc.CurrentContext = "remote"
	kubeconfig, err := clientcmd.Write(*kc)
	assert.NilError(t, err)

	cfg := local.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	vidra := versioned.NewForConfigOrDie(cfg)
	ns := "vidra-refused"
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "edge-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": kubeconfig}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	startOperator(t, ns)

	var manifest strings.Builder
	for i := range 4 {
		fmt.Fprintf(&manifest, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: default\n", i)
	}
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "to-refusing"},
		Spec: v1alpha1.VidraResourceSpec{Manifest: manifest.String(), Destination: v1alpha1.Destination{
			Server: rc.Host, KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "edge-kubeconfig"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)

	var msg string
	until(t, "a ClusterCredentials condition", func() (bool, error) {
		r, m, err := reason(vidra, "to-refusing")
		msg = m
		return r == vidraresource.ReasonClusterCredentials, fmt.Errorf("%s %s %v", r, m, err)
	})
	assert.Assert(t, strings.Contains(msg, "Cluster "+rc.Host+" refuses the credentials"), msg)
	assert.Assert(t, strings.Contains(msg, `Secret edge-kubeconfig (key "kubeconfig")`), msg)
	assert.Assert(t, strings.Contains(msg, "4 objects were not applied"), msg)
	assert.Assert(t, !strings.Contains(msg, "ConfigMap"), "per-object errors in %s", msg)
	assert.Assert(t, !strings.Contains(msg, "revoked-token"), msg)
	vr, err := vidra.InfrahubV1alpha1().VidraResources().Get(ctx, "to-refusing", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(vr.Status.Summary, "refuses the credentials"), vr.Status.Summary)
	assert.Assert(t, len(vr.Status.Summary) <= v1alpha1.MaxSummary)

	// Let it go without touching the refusing cluster.
	_, err = vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, "to-refusing", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationDeletionPolicy+`":"`+v1alpha1.DeletionPolicyOrphan+`"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "to-refusing", metav1.DeleteOptions{}))
}
