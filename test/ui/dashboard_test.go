package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/opertest"
)

const (
	appNS    = "ui-apps"
	syncName = "ui-web"
	artifact = "Webserver_Manifest"
)

// domNode is what the page shows of one tree node, read from its data
// attributes.
type domNode struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Health    string `json:"health"`
	Parent    string `json:"parent"`
}

type domState struct {
	Connection string    `json:"connection"`
	Revision   int       `json:"revision"`
	Marker     bool      `json:"marker"`
	Nodes      []domNode `json:"nodes"`
	Events     []string  `json:"events"`
	Conditions []string  `json:"conditions"`
	Problems   []string  `json:"problems"`
	DiffState  string    `json:"diffState"`
	DiffExit   string    `json:"diffExit"`
	DiffText   string    `json:"diffText"`
}

// readDOM collects the tree from the page; parent is the name of the
// closest enclosing node.
const readDOM = `(() => {
  const attr = (n, k) => n.dataset[k] || "";
  return {
    connection: attr(document.body, "connection"),
    revision: +document.body.dataset.revision,
    marker: window.__sameDocument === true,
    nodes: [...document.querySelectorAll(".node[data-kind]")].map(n => {
      const p = n.parentElement.closest(".node[data-kind]");
      return {kind: attr(n, "kind"), namespace: attr(n, "namespace"), name: attr(n, "name"),
        state: attr(n, "state"), health: attr(n, "health"), parent: p ? attr(p, "name") : ""};
    }),
    events: [...document.querySelectorAll("tr.event")].map(r => r.closest(".node").dataset.name + ":" + r.dataset.reason),
    conditions: [...document.querySelectorAll("tr.condition")].map(r => r.closest(".node").dataset.name + ":" + r.dataset.type + "=" + r.dataset.status),
    problems: [...document.querySelectorAll("#problems .problem")].map(p => p.textContent),
    diffState: document.getElementById("diff-panel").dataset.state || "",
    diffExit: document.getElementById("diff-panel").dataset.exitCode || "",
    diffText: document.getElementById("diff-output").textContent,
  };
})()`

func (s domState) node(kind, name string) *domNode {
	for i := range s.Nodes {
		if s.Nodes[i].Kind == kind && s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

func TestDashboardInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := opertest.NewClients(cp.RESTConfig())

	// Infrahub's main branch declares the ConfigMap the VidraResource
	// manages and one more, which the branch diff shows as added.
	fake := infrahubtest.NewServer()
	defer fake.Close()
	art := fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifact, TargetLabel: "web-01", Content: []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: ` + appNS + `
data:
  color: blue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: added-by-branch
  namespace: ` + appNS + `
data:
  greeting: hello
`)})

	// What the operator would have written, written here directly: the
	// test plays the operator's part so every state is under its control.
	_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = c.Kube.CoreV1().ConfigMaps(appNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: appNS},
		Data:       map[string]string{"color": "blue"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	labels := map[string]string{"app": "web"}
	_, err = c.Kube.AppsV1().Deployments(appNS).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)

	sync, err := c.Vidra.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: syncName},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source:      v1alpha1.InfrahubSource{InfrahubAPIURL: fake.URL, ArtifactName: artifact},
			Destination: v1alpha1.Destination{Namespace: appNS},
		},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	now := metav1.Now()
	meta.SetStatusCondition(&sync.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "1 artifact applied", ObservedGeneration: sync.Generation})
	sync.Status.LastSyncTime = &now
	sync, err = c.Vidra.InfrahubV1alpha1().InfrahubSyncs().UpdateStatus(ctx, sync, metav1.UpdateOptions{})
	assert.NilError(t, err)

	vrName := infrahubsync.ResourceName(syncName, art.ID)
	vr, err := c.Vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{
			Name:   vrName,
			Labels: map[string]string{v1alpha1.LabelSync: infrahubsync.SyncLabelValue(syncName)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "InfrahubSync", Name: syncName, UID: sync.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: v1alpha1.VidraResourceSpec{
			Destination: v1alpha1.Destination{Namespace: appNS},
			Source:      &v1alpha1.ArtifactSource{Sync: syncName, ArtifactID: art.ID, Target: "web-01"},
		},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	meta.SetStatusCondition(&vr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "2 objects applied", ObservedGeneration: vr.Generation})
	vr.Status.LastSyncTime = &now
	vr.Status.ManagedResources = []v1alpha1.ManagedResource{
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: appNS, Name: "settings", Version: "v1", Resource: "configmaps"},
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: appNS, Name: "web", Group: "apps", Version: "v1", Resource: "deployments"},
	}
	vr, err = c.Vidra.InfrahubV1alpha1().VidraResources().UpdateStatus(ctx, vr, metav1.UpdateOptions{})
	assert.NilError(t, err)
	recordEvent(ctx, t, c, vr.Name, "", "VidraResource", vr.UID, corev1.EventTypeNormal, "Applied", "2 objects applied")

	url := startUI(t)
	page := startBrowser(ctx, t, url)
	shots := screenshotDir(t)

	// The tree: sync → VidraResource → objects, with readiness, conditions
	// and events. No kubelet runs, so the Deployment never gets a ready
	// replica: the plugin's own reading shows it in progress.
	state := waitDOM(ctx, t, page, "the tree", func(s domState) error {
		switch {
		case s.Connection != "live":
			return fmt.Errorf("connection %q", s.Connection)
		case s.node("InfrahubSync", syncName) == nil:
			return fmt.Errorf("no sync node")
		case s.node("VidraResource", vrName) == nil:
			return fmt.Errorf("no VidraResource node")
		case s.node("ConfigMap", "settings") == nil || s.node("Deployment", "web") == nil:
			return fmt.Errorf("objects missing")
		case s.node("ConfigMap", "settings").State != "Ready":
			return fmt.Errorf("ConfigMap not read yet: %+v", s.node("ConfigMap", "settings"))
		case !contains(s.Events, vrName+":Applied"):
			return fmt.Errorf("event missing: %v", s.Events)
		}
		return nil
	})
	assert.Equal(t, state.node("InfrahubSync", syncName).State, "Ready")
	assert.Equal(t, state.node("VidraResource", vrName).Parent, syncName)
	assert.Equal(t, state.node("VidraResource", vrName).State, "Ready")
	assert.Equal(t, state.node("ConfigMap", "settings").Parent, vrName)
	assert.Equal(t, state.node("ConfigMap", "settings").Namespace, appNS)
	assert.Equal(t, state.node("Deployment", "web").Parent, vrName)
	assert.Equal(t, state.node("Deployment", "web").State, "InProgress")
	assert.Assert(t, contains(state.Conditions, vrName+":Ready=True"), "%v", state.Conditions)
	assert.Assert(t, contains(state.Conditions, syncName+":Ready=True"), "%v", state.Conditions)
	assert.Equal(t, len(state.Problems), 0, "%v", state.Problems)
	saveScreenshot(ctx, t, page, filepath.Join(shots, "1-tree.png"))

	// Live: the page is not reloaded (the marker set in this document
	// survives) and shows what changes in the cluster.
	assert.NilError(t, page.eval(ctx, "window.__sameDocument = true", nil))
	before := state.Revision
	vr, err = c.Vidra.InfrahubV1alpha1().VidraResources().Get(ctx, vrName, metav1.GetOptions{})
	assert.NilError(t, err)
	meta.SetStatusCondition(&vr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "ApplyFailed", Message: "1 of 2 objects failed", ObservedGeneration: vr.Generation})
	meta.SetStatusCondition(&vr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "ApplyFailed", Message: "1 of 2 objects failed", ObservedGeneration: vr.Generation})
	// The condition the operator's health checks write ("Healthy"); the
	// CRD accepts any condition type, so it shows before and after the
	// operator knows it.
	meta.SetStatusCondition(&vr.Status.Conditions, metav1.Condition{Type: "Healthy", Status: metav1.ConditionFalse, Reason: "Failed", Message: "Deployment ui-apps/web: 0/1 replicas available", ObservedGeneration: vr.Generation})
	_, err = c.Vidra.InfrahubV1alpha1().VidraResources().UpdateStatus(ctx, vr, metav1.UpdateOptions{})
	assert.NilError(t, err)
	recordEvent(ctx, t, c, vrName, "", "VidraResource", vr.UID, corev1.EventTypeWarning, "ApplyFailed", "ConfigMap settings: refused")
	assert.NilError(t, c.Kube.CoreV1().ConfigMaps(appNS).Delete(ctx, "settings", metav1.DeleteOptions{}))

	state = waitDOM(ctx, t, page, "the live update", func(s domState) error {
		switch {
		case s.node("VidraResource", vrName) == nil || s.node("VidraResource", vrName).State != "Stalled":
			return fmt.Errorf("VidraResource not Stalled: %+v", s.node("VidraResource", vrName))
		case s.node("ConfigMap", "settings") == nil || s.node("ConfigMap", "settings").State != "Missing":
			return fmt.Errorf("ConfigMap not Missing: %+v", s.node("ConfigMap", "settings"))
		case !contains(s.Events, vrName+":ApplyFailed"):
			return fmt.Errorf("warning event missing: %v", s.Events)
		}
		return nil
	})
	assert.Assert(t, state.Marker, "the page was reloaded instead of updated")
	assert.Assert(t, state.Revision > before, "revision %d after %d", state.Revision, before)
	assert.Assert(t, contains(state.Conditions, vrName+":Stalled=True"), "%v", state.Conditions)
	assert.Assert(t, contains(state.Conditions, vrName+":Healthy=False"), "%v", state.Conditions)
	saveScreenshot(ctx, t, page, filepath.Join(shots, "2-live-update.png"))

	// The branch diff from the sync: the same preview as `kubectl vidra
	// diff`, against the fake Infrahub.
	assert.NilError(t, page.eval(ctx, fmt.Sprintf(`document.querySelector('.node[data-kind="InfrahubSync"][data-name=%q] .diff-btn').click()`, syncName), nil))
	state = waitDOM(ctx, t, page, "the branch diff", func(s domState) error {
		if s.DiffState != "done" {
			return fmt.Errorf("diff %q", s.DiffState)
		}
		return nil
	})
	assert.Equal(t, state.DiffExit, "1", "diff output:\n%s", state.DiffText)
	assert.Assert(t, strings.Contains(state.DiffText, "+  name: added-by-branch"), "diff output:\n%s", state.DiffText)
	saveScreenshot(ctx, t, page, filepath.Join(shots, "3-branch-diff.png"))

	// Health as the operator records it (status.health, the inventory's
	// health and healthMessage): the renderer is given a page with those
	// fields, named as the plugin's JSON names them (TestBuildPageShowsTreeWithHealth
	// in cmd/kubectl-vidra checks that side), and read back in the same
	// evaluation so no update from the stream can interleave.
	var health struct {
		Nodes  []domNode `json:"nodes"`
		Badges []string  `json:"badges"`
	}
	assert.NilError(t, page.eval(ctx, renderWithHealth, &health))
	got := map[string]string{}
	for _, n := range health.Nodes {
		got[n.Kind+"/"+n.Name] = n.Health
	}
	assert.DeepEqual(t, got, map[string]string{
		"InfrahubSync/net": "Failed", "VidraResource/net-leaf1": "Failed",
		"Config/leaf1": "Failed", "VirtualMachine/vm1": "Current", "ConfigMap/plain": "",
	})
	assert.Assert(t, contains(health.Badges, "health Failed|2 current, 1 failed"), "%v", health.Badges)
	assert.Assert(t, contains(health.Badges, "health Failed|device rejected the configuration"), "%v", health.Badges)
	saveScreenshot(ctx, t, page, filepath.Join(shots, "4-health.png"))
}

// renderWithHealth renders a page holding the operator's health fields and
// returns the nodes and the health badges (text|title).
const renderWithHealth = `(() => {
  const h = {status: "Failed", current: 2, inProgress: 0, failed: 1, unknown: 0};
  const obj = (kind, apiVersion, name, state, health, healthMessage) => ({apiVersion, kind, namespace: "net", name, state,
    health, healthMessage, events: []});
  render({revision: 1000000, cluster: "synthetic", syncs: [{name: "net", state: "Ready", suspended: false, source: "https://infrahub.example.com",
    branch: "main", artifactName: "leaf", destination: "local", health: h, conditions: [], events: [], resources: [{
      name: "net-leaf1", state: "Ready", suspended: false, destination: "local", health: h, conditions: [
        {type: "Healthy", status: "False", reason: "Failed", message: "1 of 3 objects failed"}], events: [],
      objects: [obj("Config", "config.sdcio.dev/v1alpha1", "leaf1", "InProgress", "Failed", "device rejected the configuration"),
        obj("VirtualMachine", "kubevirt.io/v1", "vm1", "Ready", "Current", ""),
        obj("ConfigMap", "v1", "plain", "Ready")]}]}], standaloneResources: []});
  return {
    nodes: [...document.querySelectorAll(".node[data-kind]")].map(n => ({kind: n.dataset.kind, name: n.dataset.name, health: n.dataset.health || ""})),
    badges: [...document.querySelectorAll('.badge[data-field="health"]')].map(b => b.textContent + "|" + b.title),
  };
})()`

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// recordEvent writes an events.k8s.io/v1 Event as the operator's recorder
// does.
func recordEvent(ctx context.Context, t *testing.T, c opertest.Clients, name, namespace, kind string, uid types.UID, typ, reason, note string) {
	t.Helper()
	evNS := namespace
	if evNS == "" {
		evNS = metav1.NamespaceDefault
	}
	_, err := c.Kube.EventsV1().Events(evNS).Create(ctx, &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, time.Now().UnixNano())},
		EventTime:           metav1.NowMicro(),
		ReportingController: "vidra-ui-test",
		ReportingInstance:   "vidra-ui-test",
		Action:              "Reconcile",
		Reason:              reason,
		Note:                note,
		Type:                typ,
		Regarding: corev1.ObjectReference{
			APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: kind, Name: name, Namespace: namespace, UID: uid,
		},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
}

var dashboardURL = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`)

// startUI runs `kubectl-vidra ui --port 0` with the control plane's
// kubeconfig and returns the URL it prints. At the end of the test it must
// stop cleanly on SIGINT, as on Ctrl-C.
func startUI(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(pluginBin, "ui", "--port", "0")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.KubeconfigPath())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	assert.NilError(t, err)
	assert.NilError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kubectl-vidra ui did not stop cleanly on SIGINT: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("kubectl-vidra ui did not stop within 20s of SIGINT")
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	assert.NilError(t, err, "stderr: %s", stderr.String())
	t.Logf("kubectl vidra ui: %s", strings.TrimSpace(line))
	url := dashboardURL.FindString(line)
	assert.Assert(t, url != "", "no loopback URL in %q", line)
	return url
}

// startBrowser starts headless Chromium on url and connects to the page's
// DevTools endpoint.
func startBrowser(ctx context.Context, t *testing.T, url string) *cdp {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1000",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	assert.NilError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chromium output:\n%s", logs.String())
		}
	})
	// Chromium writes the port it chose into the profile.
	var port string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil || !strings.Contains(string(data), "\n") {
			return false, nil
		}
		port = strings.SplitN(string(data), "\n", 2)[0]
		return port != "", nil
	})
	assert.NilError(t, err, "chromium did not open its DevTools port:\n%s", logs.String())

	var wsURL string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var targets []struct {
			Type, URL, WebSocketDebuggerURL string
		}
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false, nil
		}
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, url) {
				wsURL = tg.WebSocketDebuggerURL
				return true, nil
			}
		}
		return false, nil
	})
	assert.NilError(t, err, "no page target for %s", url)
	page, err := dialCDP(ctx, wsURL)
	assert.NilError(t, err)
	t.Cleanup(func() { page.Close() })
	return page
}

// waitDOM reads the page until check accepts it, for up to two minutes
// (the machine may be busy).
func waitDOM(ctx context.Context, t *testing.T, page *cdp, what string, check func(domState) error) domState {
	t.Helper()
	var s domState
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		var got domState
		if err := page.eval(ctx, readDOM, &got); err != nil {
			last = err
			return false, nil
		}
		s = got
		last = check(got)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)\npage: %+v", what, err, last, s)
	}
	return s
}

// screenshotDir is test/ui/screenshots, ignored by git.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("screenshots")
	assert.NilError(t, err)
	assert.NilError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func saveScreenshot(ctx context.Context, t *testing.T, page *cdp, path string) {
	t.Helper()
	data, err := page.screenshot(ctx)
	assert.NilError(t, err)
	img, err := png.Decode(bytes.NewReader(data))
	assert.NilError(t, err)
	assert.Assert(t, img.Bounds().Dx() >= 800 && img.Bounds().Dy() >= 600, "screenshot is %v", img.Bounds())
	assert.NilError(t, os.WriteFile(path, data, 0o644))
	t.Logf("screenshot: %s", path)
}
