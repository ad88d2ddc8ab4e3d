package multicluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/test/controlplane"
)

func widgetNamed(name string) string {
	return strings.Replace(widget, "name: w1", "name: "+name, 1)
}

// remoteCluster is the operator's live cluster for server, nil when it has
// none.
func remoteCluster(op *operator.Operator, server string) *cluster.Cluster {
	for _, c := range op.Clusters.Clusters() {
		if c.Server == cluster.NormalizeServer(server) {
			return c
		}
	}
	return nil
}

func condition(vidra versioned.Interface, name, typ string) (*metav1.Condition, error) {
	vr, err := vidra.InfrahubV1alpha1().VidraResources().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return meta.FindStatusCondition(vr.Status.Conditions, typ), nil
}

// widgetRequests reads the remote API server's own metrics: how many list
// and watch requests for widgets it has completed, and how many watches of
// widgets are open.
func widgetRequests(ctx context.Context, kube kubernetes.Interface) (completed, open float64, err error) {
	raw, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `group="harness.vidra.dev"`) || !strings.Contains(line, `resource="widgets"`) {
			continue
		}
		value := func() float64 {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			return v
		}
		switch {
		case strings.HasPrefix(line, "apiserver_request_total{") && (strings.Contains(line, `verb="LIST"`) || strings.Contains(line, `verb="WATCH"`)):
			completed += value()
		case strings.HasPrefix(line, "apiserver_longrunning_requests{") && strings.Contains(line, `verb="WATCH"`):
			open += value()
		}
	}
	return completed, open, sc.Err()
}

// scrape returns the operator's metric lines starting with prefix.
func scrape(t *testing.T, reg *metrics.Registry, prefix string) []string {
	t.Helper()
	var buf bytes.Buffer
	assert.NilError(t, reg.Write(&buf))
	var out []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// A remote cluster's drift watches stay open past several request timeouts;
// a kubeconfig naming a file of the operator's pod is refused; a rotated
// kubeconfig gives every VidraResource on that cluster its drift watches
// back without delaying other clusters; a failing watch shows in a
// condition and a metric; a cluster no longer used is released.
func TestRemoteWatchLifecycle(t *testing.T) {
	ctx := context.Background()
	remote := controlplane.StartForTest(t, controlplane.Config{
		Name:     "lifecycle",
		CRDPaths: []string{filepath.Join("..", "controlplane", "testdata", "widgets-crd.yaml")},
	})
	kube := kubernetes.NewForConfigOrDie(local.RESTConfig())
	vidra := versioned.NewForConfigOrDie(local.RESTConfig())
	remoteKube := kubernetes.NewForConfigOrDie(remote.RESTConfig())
	remoteDyn := dynamic.NewForConfigOrDie(remote.RESTConfig())
	server := remote.RESTConfig().Host

	ns := "vidra-lifecycle"
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	good, err := os.ReadFile(remote.KubeconfigPath())
	assert.NilError(t, err)
	kubeconfigSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "remote"}, Data: map[string][]byte{"kubeconfig": good}}
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, kubeconfigSecret, metav1.CreateOptions{})
	assert.NilError(t, err)
	// A kubeconfig that would send the operator's own service account
	// token to the server it names.
	fileToken := clientcmdapi.NewConfig()
	fileToken.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: remote.RESTConfig().CAData}
	fileToken.AuthInfos["u"] = &clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"}
	fileToken.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	fileToken.CurrentContext = "c"
	fileTokenData, err := clientcmd.Write(*fileToken)
	assert.NilError(t, err)
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "file-token"},
		Data: map[string][]byte{"kubeconfig": fileTokenData}}, metav1.CreateOptions{})
	assert.NilError(t, err)

	const timeout = 2 * time.Second
	reg := metrics.NewRegistry()
	op := startOperator(t, ns, func(c *operator.Config) {
		c.RemoteTimeout = timeout
		c.ClusterIdleGrace = 3 * time.Second
		c.Metrics = metrics.New(reg, "test")
	})

	remoteDest := v1alpha1.Destination{Server: server, KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "remote"}, ReconcileOnEvents: true}
	owners := []string{"watched-a", "watched-b"}
	for _, name := range owners {
		_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       v1alpha1.VidraResourceSpec{Manifest: widgetNamed(name), Destination: remoteDest},
		}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "file-token"},
		Spec: v1alpha1.VidraResourceSpec{Manifest: widgetNamed("never"),
			Destination: v1alpha1.Destination{Server: server, KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "file-token"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)

	for _, name := range owners {
		until(t, name+" Applied with working drift watches", func() (bool, error) {
			r, msg, err := reason(vidra, name)
			if r != vidraresource.ReasonApplied {
				return false, fmt.Errorf("%s %s %v", r, msg, err)
			}
			c, err := condition(vidra, name, vidraresource.ConditionDriftWatch)
			return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v %v", c, err)
		})
	}
	until(t, "the remote drift watch synced", func() (bool, error) {
		c := remoteCluster(op, server)
		return c != nil && c.Watches.HasSynced(gvrWidget), nil
	})

	// The watch stays open past several request timeouts: the remote API
	// server completes no list or watch of widgets meanwhile.
	before, open, err := widgetRequests(ctx, remoteKube)
	assert.NilError(t, err)
	assert.Assert(t, open >= 1, "no open watch of widgets on the remote")
	time.Sleep(4 * timeout)
	after, openWhileWatched, err := widgetRequests(ctx, remoteKube)
	assert.NilError(t, err)
	assert.Equal(t, after, before, "the remote API server saw widgets re-listed or re-watched while nothing changed")
	assert.Assert(t, openWhileWatched >= 1, "no open watch of widgets on the remote")
	healthy := fmt.Sprintf(`%s{cluster=%q,resource="harness.vidra.dev/v1alpha1/widgets"} 1`, metrics.DriftWatchHealthy, cluster.NormalizeServer(server))
	remoteWatches := fmt.Sprintf("%s{cluster=%q,", metrics.DriftWatchHealthy, cluster.NormalizeServer(server))
	assert.DeepEqual(t, scrape(t, reg, remoteWatches), []string{healthy})
	assert.DeepEqual(t, scrape(t, reg, metrics.RemoteClusters+" "), []string{metrics.RemoteClusters + " 1"})

	// A kubeconfig naming a file of the operator's pod is refused, and the
	// condition names the Secret and the field.
	until(t, "the tokenFile kubeconfig refused", func() (bool, error) {
		r, msg, err := reason(vidra, "file-token")
		return r == vidraresource.ReasonClusterCredentials && strings.Contains(msg, `Secret vidra-lifecycle/file-token key "kubeconfig"`) &&
			strings.Contains(msg, "tokenFile"), fmt.Errorf("%s %s %v", r, msg, err)
	})

	// Rotation: the Secret changes (new bytes, same credentials). Another
	// cluster's work goes on meanwhile.
	old := remoteCluster(op, server)
	kubeconfigSecret.Data["kubeconfig"] = append(append([]byte{}, good...), []byte("# rotated\n")...)
	_, err = kube.CoreV1().Secrets(ns).Update(ctx, kubeconfigSecret, metav1.UpdateOptions{})
	assert.NilError(t, err)
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "local-during-rotation"},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: during-rotation\n  namespace: default\n"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "the local VidraResource applied during the rotation", func() (bool, error) {
		r, msg, err := reason(vidra, "local-during-rotation")
		return r == vidraresource.ReasonApplied, fmt.Errorf("%s %s %v", r, msg, err)
	})
	// Without any reconcile being asked for, both VidraResources on the
	// rotated cluster watch through its new clients.
	until(t, "new clients with both owners' drift watches", func() (bool, error) {
		c := remoteCluster(op, server)
		if c == nil || c == old {
			return false, fmt.Errorf("not rebuilt")
		}
		for _, name := range owners {
			if h := c.Watches.OwnerWatchHealth(name); h.Resources != 1 {
				return false, fmt.Errorf("%s watches %d types", name, h.Resources)
			}
		}
		return c.Watches.HasSynced(gvrWidget), fmt.Errorf("not synced")
	})
	// A hand edit on the rotated cluster is undone for every VidraResource.
	for _, name := range owners {
		_, err := remoteDyn.Resource(gvrWidget).Namespace("default").Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"size":99}}`), metav1.PatchOptions{})
		assert.NilError(t, err)
	}
	for _, name := range owners {
		until(t, "the hand edit of "+name+" repaired", func() (bool, error) {
			w, err := remoteDyn.Resource(gvrWidget).Namespace("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			size, _, _ := unstructuredInt(w.Object, "spec", "size")
			return size == 2, fmt.Errorf("size %d", size)
		})
	}

	// The remote goes down: the failing watch shows in the condition and
	// the metric, and clears when it comes back.
	assert.NilError(t, remote.StopAPIServer())
	until(t, "the DriftWatch condition False", func() (bool, error) {
		c, err := condition(vidra, "watched-a", vidraresource.ConditionDriftWatch)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == vidraresource.ReasonWatchFailing &&
			strings.Contains(c.Message, "widgets.harness.vidra.dev"), fmt.Errorf("%+v %v", c, err)
	})
	assert.DeepEqual(t, scrape(t, reg, remoteWatches), []string{strings.TrimSuffix(healthy, "1") + "0"})
	assert.NilError(t, remote.StartAPIServer(ctx))
	for _, name := range owners {
		until(t, "the DriftWatch condition of "+name+" True again", func() (bool, error) {
			c, err := condition(vidra, name, vidraresource.ConditionDriftWatch)
			return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v %v", c, err)
		})
	}
	assert.DeepEqual(t, scrape(t, reg, remoteWatches), []string{healthy})

	// Nothing uses the remote any more: its clients and informers go.
	for _, name := range append(owners, "file-token") {
		assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, name, metav1.DeleteOptions{}))
	}
	for _, name := range append(owners, "file-token") {
		until(t, name+" deleted", func() (bool, error) {
			_, err := vidra.InfrahubV1alpha1().VidraResources().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
	}
	until(t, "the remote cluster released", func() (bool, error) {
		return remoteCluster(op, server) == nil, nil
	})
	assert.DeepEqual(t, scrape(t, reg, metrics.RemoteClusters+" "), []string{metrics.RemoteClusters + " 0"})
	// The operator's watch of widgets on the remote is closed; only the
	// remote's own controller manager may still watch them.
	until(t, "the operator's remote watch closed", func() (bool, error) {
		_, open, err := widgetRequests(ctx, remoteKube)
		return open < openWhileWatched, fmt.Errorf("%v open watches, %v while watched: %v", open, openWhileWatched, err)
	})
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "local-during-rotation", metav1.DeleteOptions{}))
}
