package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

func parseOptions(t *testing.T, args ...string) (*options, error) {
	t.Helper()
	o := &options{}
	fs := newFlagSet(o)
	fs.SetOutput(io.Discard)
	return o, o.parse(fs, args)
}

func TestDefaults(t *testing.T) {
	o, err := parseOptions(t)
	assert.NilError(t, err)
	assert.Equal(t, o.qps, 200.0)
	assert.Equal(t, o.burst, 400)
	assert.Equal(t, o.syncInterval, time.Minute)
	assert.Equal(t, o.resourceInterval, 10*time.Minute)
	assert.Equal(t, o.configMap, "vidra-config")
	assert.Equal(t, int64(o.cacheBytes), int64(256<<20))
	assert.Equal(t, int64(o.maxManifestBytes), int64(16<<20))
	assert.Equal(t, int64(o.maxResourceBytes), int64(1472<<10))
	assert.Assert(t, disabled(o.pprofAddr))
	assert.Assert(t, disabled(o.webhookAddr))
	assert.Assert(t, !o.leaderElect)
	assert.Equal(t, len(o.explicit), 0)
}

func TestFlagValidation(t *testing.T) {
	for _, args := range [][]string{
		{"-sync-interval=0s"},
		{"-resource-interval=-1m"},
		{"-sync-workers=0"},
		{"-kube-api-qps=0"},
		{"-log-format=yaml"},
		{"-query-name=a/b"},
		{"-artifact-cache-size=lots"},
		{"-max-manifest-bytes=0"},
		{"-max-resource-bytes=0"},
		{"-leader-elect", "-leader-election-lease-duration=5s", "-leader-election-renew-deadline=5s"},
		{"-leader-elect", "-leader-election-renew-deadline=2s", "-leader-election-retry-period=2s"},
		{"extra-argument"},
	} {
		_, err := parseOptions(t, args...)
		assert.Assert(t, err != nil, "%v accepted", args)
	}
	o, err := parseOptions(t, "-artifact-cache-size=64Mi", "-max-manifest-bytes=10Mi", "-max-resource-bytes=4Mi", "-sync-interval=30s", "-leader-elect",
		"-leader-election-lease-duration=4s", "-leader-election-renew-deadline=3s", "-leader-election-retry-period=500ms")
	assert.NilError(t, err)
	assert.Equal(t, int64(o.cacheBytes), int64(64<<20))
	assert.Equal(t, int64(o.maxManifestBytes), int64(10<<20))
	assert.Equal(t, int64(o.maxResourceBytes), int64(4<<20))
	assert.Assert(t, o.explicit[flagSyncInterval])
}

// captureLogger returns a JSON logger writing into a buffer, and a function
// returning the parsed lines.
func captureLogger(t *testing.T) (klog.Logger, func() []map[string]any) {
	var buf bytes.Buffer
	logger := newJSONLogger(&buf, func(int) bool { return true })
	return logger, func() []map[string]any {
		var out []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
		for sc.Scan() {
			var m map[string]any
			assert.NilError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
			out = append(out, m)
		}
		return out
	}
}

func configMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vidra-system", Name: "vidra-config"}, Data: data}
}

func TestConfigMapKeys(t *testing.T) {
	logger, lines := captureLogger(t)
	o, err := parseOptions(t)
	assert.NilError(t, err)
	problems := applyConfigMap(logger, configMap(map[string]string{
		"requeueSyncAfter":      "2m",
		"requeueResourcesAfter": "1h30m",
		"queryName":             " ArtifactIDs ",
		"eventBasedReconcile":   "TRUE",
	}), o)
	assert.Equal(t, len(problems), 0)
	assert.Equal(t, o.syncInterval, 2*time.Minute)
	assert.Equal(t, o.resourceInterval, 90*time.Minute)
	assert.Equal(t, o.queryName, "ArtifactIDs")
	assert.Assert(t, o.reconcileOnEvents)
	for _, l := range lines() {
		assert.Equal(t, l["level"], "info")
	}
}

func TestConfigMapToleratesMissingKeys(t *testing.T) {
	// The earlier operator panicked on a ConfigMap lacking its keys.
	for _, data := range []map[string]string{nil, {}, {"eventBasedReconcile": "false"}, {"unrelated": "x"}} {
		logger, _ := captureLogger(t)
		o, err := parseOptions(t)
		assert.NilError(t, err)
		problems := applyConfigMap(logger, configMap(data), o)
		assert.Equal(t, len(problems), 0)
		assert.Equal(t, o.syncInterval, time.Minute)
		assert.Equal(t, o.resourceInterval, 10*time.Minute)
	}
}

func TestConfigMapRejectsBadValues(t *testing.T) {
	logger, lines := captureLogger(t)
	o, err := parseOptions(t)
	assert.NilError(t, err)
	problems := applyConfigMap(logger, configMap(map[string]string{
		"requeueSyncAfter":      "-1m",
		"requeueResourcesAfter": "ten minutes",
		"queryName":             "has space",
		"eventBasedReconcile":   "perhaps",
	}), o)
	assert.Equal(t, len(problems), 4)
	assert.Equal(t, o.syncInterval, time.Minute)
	assert.Equal(t, o.resourceInterval, 10*time.Minute)
	assert.Equal(t, o.queryName, "")
	assert.Assert(t, !o.reconcileOnEvents)
	var errorsLogged []string
	for _, l := range lines() {
		if l["level"] == "error" {
			errorsLogged = append(errorsLogged, l["key"].(string))
			assert.Equal(t, l["configMap"], "vidra-system/vidra-config")
			assert.Assert(t, l["reason"] != "" && l["value"] != nil)
		}
	}
	assert.Equal(t, len(errorsLogged), 4, "one clear line per bad value: %v", errorsLogged)
}

func TestConfigMapAliasZeroAndFlagPrecedence(t *testing.T) {
	logger, lines := captureLogger(t)
	o, err := parseOptions(t, "-sync-interval=45s")
	assert.NilError(t, err)
	problems := applyConfigMap(logger, configMap(map[string]string{
		"requeueSyncAfter":     "5m", // the flag wins
		"requeueResourceAfter": "0",  // the CLI's misspelling; 0 turns periodic resync off
	}), o)
	assert.Equal(t, len(problems), 0)
	assert.Equal(t, o.syncInterval, 45*time.Second)
	assert.Equal(t, o.resourceInterval, intervalOff)
	text := ""
	for _, l := range lines() {
		text += l["msg"].(string) + "\n"
	}
	assert.Assert(t, strings.Contains(text, "alias"), text)
	assert.Assert(t, strings.Contains(text, "command line"), text)

	// Both spellings: the plural wins.
	o, _ = parseOptions(t)
	applyConfigMap(logger, configMap(map[string]string{"requeueResourceAfter": "1m", "requeueResourcesAfter": "2m"}), o)
	assert.Equal(t, o.resourceInterval, 2*time.Minute)
}

type stringer struct{}

func (stringer) String() string { return "stringer!" }

func TestJSONLogger(t *testing.T) {
	logger, lines := captureLogger(t)
	logger.WithName("leader").WithValues("lease", "ns/x").Info("Hello", "n", 3, "obj", klog.KRef("ns", "name"), "s", stringer{}, "msg", "clash")
	logger.Error(errors.New("boom"), "Failed", "d", time.Second, "odd")
	logger.V(2).Info("Verbose")

	got := lines()
	assert.Equal(t, len(got), 3)
	first := got[0]
	assert.Equal(t, first["msg"], "Hello")
	assert.Equal(t, first["msg_"], "clash")
	assert.Equal(t, first["level"], "info")
	assert.Equal(t, first["v"], 0.0)
	assert.Equal(t, first["logger"], "leader")
	assert.Equal(t, first["lease"], "ns/x")
	assert.Equal(t, first["n"], 3.0)
	assert.Equal(t, first["s"], "stringer!")
	assert.DeepEqual(t, first["obj"], map[string]any{"name": "name", "namespace": "ns"})
	assert.Assert(t, strings.HasPrefix(first["caller"].(string), "main_test.go:"), "caller %v", first["caller"])
	_, err := time.Parse(time.RFC3339Nano, first["ts"].(string))
	assert.NilError(t, err)

	second := got[1]
	assert.Equal(t, second["level"], "error")
	assert.Equal(t, second["err"], "boom")
	assert.Equal(t, second["odd"], "(MISSING)")
	assert.Equal(t, got[2]["v"], 2.0)

	// Verbosity is honoured.
	var buf bytes.Buffer
	quiet := newJSONLogger(&buf, func(level int) bool { return level <= 1 })
	quiet.V(2).Info("hidden")
	quiet.V(1).Info("shown")
	assert.Equal(t, strings.Count(buf.String(), "\n"), 1)
}

func TestJSONLoggerThroughKlog(t *testing.T) {
	var buf bytes.Buffer
	klog.SetLoggerWithOptions(newJSONLogger(&buf, func(int) bool { return true }), klog.ContextualLogger(true))
	defer klog.ClearLogger()
	klog.InfoS("Structured", "k", "v")
	klog.Infof("Formatted %d", 7)
	klog.Background().Info("Contextual")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Equal(t, len(lines), 3, buf.String())
	for _, line := range lines {
		var m map[string]any
		assert.NilError(t, json.Unmarshal([]byte(line), &m))
		assert.Assert(t, strings.HasPrefix(m["caller"].(string), "main_test.go:"), "caller %v", m["caller"])
	}
	assert.Assert(t, strings.Contains(lines[1], `"msg":"Formatted 7"`), lines[1])
}

func TestReadiness(t *testing.T) {
	synced := false
	h := &health{synced: func() bool { return synced }}
	assert.ErrorContains(t, h.ready(), "not synced")
	synced = true
	assert.NilError(t, h.ready())
	h.shuttingDown.Store(true)
	assert.ErrorContains(t, h.ready(), "shutting down")

	// Electing: a standby is ready, a leader once synced.
	synced = false
	e := &health{electing: true, synced: func() bool { return synced }}
	assert.ErrorContains(t, e.ready(), "not started")
	e.standingBy.Store(true)
	assert.NilError(t, e.ready())
	assert.Assert(t, !e.isLeader())
	e.leading.Store(true)
	assert.ErrorContains(t, e.ready(), "not synced")
	synced = true
	assert.NilError(t, e.ready())
	assert.Assert(t, e.isLeader())

	mux := http.NewServeMux()
	e.leaseCheck = func(*http.Request) error { return errors.New("lease expired") }
	e.register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]int{"/readyz": 200, "/healthz": 503, "/livez": 503} {
		resp, err := http.Get(srv.URL + path)
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, want, path)
		assert.Equal(t, resp.Header.Get("X-Vidra-Role"), "leader")
	}
}

func TestCheckQueryName(t *testing.T) {
	assert.NilError(t, checkQueryName("ArtifactIDs"))
	assert.NilError(t, checkQueryName("my-query_v2.1"))
	for _, bad := range []string{"", "a b", "a/b", "a?b", "a#b", "a%20", "a\tb", strings.Repeat("x", 254)} {
		assert.Assert(t, checkQueryName(bad) != nil, bad)
	}
}

// Without vidra-config, the earlier operator's ConfigMap (label app: vidra,
// any name) is read, with a deprecation warning; vidra-config wins when
// both exist; neither gives the defaults.
func TestLegacyConfigMapByLabel(t *testing.T) {
	legacy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vidra-system", Name: "vidra-operator-config",
		Labels: map[string]string{"app": "vidra"}}, Data: map[string]string{"requeueSyncAfter": "2m"}}
	unrelated := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vidra-system", Name: "other"}}
	current := configMap(map[string]string{"requeueSyncAfter": "3m"})
	for _, tc := range []struct {
		name        string
		objects     []runtime.Object
		want        string // ConfigMap name read, "" for none
		wantWarning bool
	}{
		{name: "legacy only", objects: []runtime.Object{legacy, unrelated}, want: legacy.Name, wantWarning: true},
		{name: "both", objects: []runtime.Object{legacy, current}, want: "vidra-config"},
		{name: "none", objects: []runtime.Object{unrelated}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
			kube := kubefake.NewClientset(tc.objects...)
			cm, err := readConfigMap(context.Background(), logger, kube, "vidra-system", "vidra-config")
			assert.NilError(t, err)
			logged := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
			assert.Equal(t, strings.Contains(logged, "DEPRECATED"), tc.wantWarning, logged)
			if tc.want == "" {
				assert.Assert(t, cm == nil)
				return
			}
			assert.Equal(t, cm.Name, tc.want)
			o, err := parseOptions(t)
			assert.NilError(t, err)
			assert.Equal(t, len(applyConfigMap(logger, cm, o)), 0)
			if tc.wantWarning {
				assert.Equal(t, o.syncInterval, 2*time.Minute, "the legacy keys apply as before")
			}
		})
	}
}

// TestWatchLabelSelector: a bad selector stops the start; a shard gets its
// own Lease unless one is named.
func TestWatchLabelSelector(t *testing.T) {
	_, err := parseOptions(t, "-watch-label-selector=sharding.infrahub.operators.com/key in (")
	assert.ErrorContains(t, err, "-watch-label-selector")

	o, err := parseOptions(t)
	assert.NilError(t, err)
	assert.Assert(t, !o.shard.Sharded())
	assert.Equal(t, o.leaseName, "vidra-operator")

	one, err := parseOptions(t, "-leader-elect", "-watch-label-selector=sharding.infrahub.operators.com/key in (shard1)")
	assert.NilError(t, err)
	assert.Assert(t, one.shard.Sharded())
	assert.Assert(t, one.shard.Matches(map[string]string{"sharding.infrahub.operators.com/key": "shard1"}))
	main, err := parseOptions(t, "-leader-elect", "-watch-label-selector=!sharding.infrahub.operators.com/key")
	assert.NilError(t, err)
	assert.Assert(t, strings.HasPrefix(one.leaseName, "vidra-operator-"), one.leaseName)
	assert.Assert(t, strings.HasPrefix(main.leaseName, "vidra-operator-"), main.leaseName)
	assert.Assert(t, one.leaseName != main.leaseName)

	named, err := parseOptions(t, "-leader-elect", "-watch-label-selector=sharding.infrahub.operators.com/key in (shard1)", "-leader-election-id=vidra-shard1")
	assert.NilError(t, err)
	assert.Equal(t, named.leaseName, "vidra-shard1")
}
