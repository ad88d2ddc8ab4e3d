package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/metrics/metricstest"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/infrahub"
)

// operatorMetricNames builds the registry as cmd/vidra-operator does,
// makes every family emit a sample (some are only written once something
// happened) and returns the names of the scraped samples and families.
func operatorMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := metrics.NewRegistry()
	provider := metrics.NewWorkqueueProvider(reg)
	metrics.RegisterProcessCollector(reg)
	m := metrics.New(reg, "v0.0.0-test")
	m.ObserveReconcile(infrahubsync.ControllerName, time.Second, nil)
	m.ObserveReconcile(vidraresource.ControllerName, time.Second, errors.New("failed"))
	m.ObserveApply("local", "created")
	m.ObserveRequest("graphql", 200, time.Millisecond)
	m.SetManagedObjects("vr", "local", map[string]int{"ConfigMap": 1})
	m.SetLeader(true)
	m.WatchCache(func() (infrahub.CacheStats, bool) {
		return infrahub.CacheStats{Hits: 1, Misses: 1, Bytes: 10, Entries: 1}, true
	})
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: vidraresource.ControllerName, MetricsProvider: provider})
	defer q.ShutDown()
	q.Add("x")
	item, _ := q.Get()
	q.AddRateLimited(item)
	q.Done(item)

	var buf bytes.Buffer
	assert.NilError(t, reg.Write(&buf))
	fams, err := metricstest.Parse(bytes.NewReader(buf.Bytes()))
	assert.NilError(t, err)
	names := map[string]bool{}
	for name, f := range fams {
		names[name] = true
		for _, s := range f.Samples {
			names[s.Name] = true
		}
	}
	return names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are neither functions (followed by "("),
// keywords nor parts of numbers.
func promqlMetrics(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(s[loc[0]-1])) {
			continue // 1e-9, $variable
		}
		if promKeywords[strings.ToLower(word)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		out = append(out, word)
	}
	return out
}

func TestPromQLMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (controller) (rate(vidra_reconcile_errors_total{job=~"$job", x="a{b}"}[$__rate_interval])) / clamp_min(sum(vidra_reconcile_total), 1e-9) > 0.25`: {"vidra_reconcile_errors_total", "vidra_reconcile_total"},
		`histogram_quantile(0.99, sum by (le, endpoint) (rate(vidra_infrahub_request_duration_seconds_bucket[5m])))`:                                             {"vidra_infrahub_request_duration_seconds_bucket"},
		`absent(vidra_build_info) == 1`:         {"vidra_build_info"},
		`max(up) < 1 and on (job) vidra_leader`: {"up", "vidra_leader"},
	} {
		assert.DeepEqual(t, promqlMetrics(expr), want)
	}
}

// dashboardQueries returns every PromQL expression of the dashboard: the
// panels' targets (rows included) and the templating queries.
func dashboardQueries(t *testing.T, data []byte) []string {
	t.Helper()
	var dash struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	assert.NilError(t, json.Unmarshal(data, &dash))
	var out []string
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				assert.Assert(t, tg.Expr != "", "panel %q has a target without expr", p.Title)
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	labelValues := regexp.MustCompile(`^label_values\(([^,]+),\s*[A-Za-z_]+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		assert.Assert(t, m != nil, "unexpected templating query %v", v.Query)
		out = append(out, m[1])
	}
	return out
}

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readMonitoringFiles(t *testing.T) (dashboard []byte, rules ruleFile) {
	t.Helper()
	dashboard, err := os.ReadFile(filepath.Join(chartDir(), "monitoring", "grafana-dashboard.json"))
	assert.NilError(t, err)
	data, err := os.ReadFile(filepath.Join(chartDir(), "monitoring", "alerts.yaml"))
	assert.NilError(t, err)
	assert.NilError(t, yaml.UnmarshalStrict(data, &rules))
	return dashboard, rules
}

// TestMonitoringMetricsExist: every metric the Grafana dashboard and the
// alert rules read is one the operator exports.
func TestMonitoringMetricsExist(t *testing.T) {
	known := operatorMetricNames(t)
	dashboard, rules := readMonitoringFiles(t)
	exprs := dashboardQueries(t, dashboard)
	assert.Assert(t, len(exprs) >= 20, "only %d dashboard queries", len(exprs))
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			assert.Assert(t, r.Alert != "" && r.Expr != "", "rule %+v", r)
			assert.Assert(t, r.Labels["severity"] != "" && r.Annotations["summary"] != "" && r.Annotations["description"] != "", "alert %s", r.Alert)
			_, err := time.ParseDuration(r.For)
			assert.NilError(t, err, "alert %s", r.Alert)
			exprs = append(exprs, r.Expr)
			alerts++
		}
	}
	assert.Assert(t, alerts >= 5, "only %d alerts", alerts)
	used := map[string]bool{}
	for _, expr := range exprs {
		names := promqlMetrics(expr)
		assert.Assert(t, len(names) > 0, "no metric in %q", expr)
		for _, n := range names {
			assert.Assert(t, known[n], "%s (in %q) is not exported by the operator", n, expr)
			used[n] = true
		}
	}
	// Every family of Vidra's own is on the dashboard or in an alert.
	var unused []string
	for _, name := range []string{metrics.ReconcileTotal, metrics.ReconcileErrors, metrics.ReconcileDuration, metrics.InfrahubRequests,
		metrics.InfrahubRequestDuration, metrics.ApplyOperations, metrics.ManagedObjects, metrics.ArtifactCacheHits, metrics.ArtifactCacheMisses,
		metrics.ArtifactCacheEvictions, metrics.ArtifactCacheBytes, metrics.ArtifactCacheEntries, metrics.Leader, metrics.BuildInfo} {
		if !used[name] && !used[name+"_bucket"] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	assert.DeepEqual(t, unused, []string(nil))
}

// TestMonitoringRender: off by default; when enabled, the dashboard
// ConfigMap carries the sidecar's label and the file as is, the
// PrometheusRule the alert rules with the extra labels, and the API server
// admits both.
func TestMonitoringRender(t *testing.T) {
	const ns = "vidra-monitoring"
	ensureNamespace(t, ns, nil)
	_, objs := render(t, ns)
	assert.Assert(t, find(objs, "PrometheusRule", "") == nil, "PrometheusRule rendered by default")
	assert.Assert(t, find(objs, "ConfigMap", "vidra-dashboard") == nil, "dashboard rendered by default")

	text, objs := render(t, ns,
		"--set", "metrics.grafanaDashboard.enabled=true",
		"--set", "metrics.grafanaDashboard.annotations.grafana_folder=Vidra",
		"--set", "metrics.prometheusRule.enabled=true",
		"--set", "metrics.prometheusRule.labels.release=prometheus",
		"--set", "metrics.prometheusRule.additionalLabels.team=platform")
	serverDryRun(t, text)
	dashboard, rules := readMonitoringFiles(t)

	cm := into[corev1.ConfigMap](t, find(objs, "ConfigMap", "vidra-dashboard"))
	assert.Equal(t, cm.Labels["grafana_dashboard"], "1")
	assert.Equal(t, cm.Annotations["grafana_folder"], "Vidra")
	assert.Equal(t, cm.Namespace, ns)
	var got, want any
	assert.NilError(t, json.Unmarshal([]byte(cm.Data["vidra.json"]), &got))
	assert.NilError(t, json.Unmarshal(dashboard, &want))
	assert.DeepEqual(t, got, want)

	pr := find(objs, "PrometheusRule", "vidra")
	assert.Assert(t, pr != nil)
	assert.Equal(t, pr.GetLabels()["release"], "prometheus")
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	assert.Equal(t, len(groups), len(rules.Groups))
	var alerts []string
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			alerts = append(alerts, rule["alert"].(string))
			labels := rule["labels"].(map[string]any)
			assert.Equal(t, labels["team"], "platform", "alert %s", rule["alert"])
			assert.Assert(t, labels["severity"] != "", "alert %s lost its severity", rule["alert"])
			// Prometheus' own templates reach the rule untouched by helm.
			for _, a := range rule["annotations"].(map[string]any) {
				assert.Assert(t, !strings.Contains(a.(string), "<no value>"), "%v", a)
			}
		}
	}
	var wantAlerts []string
	for _, r := range rules.Groups[0].Rules {
		wantAlerts = append(wantAlerts, r.Alert)
	}
	assert.Assert(t, slices.Equal(alerts, wantAlerts), "%v != %v", alerts, wantAlerts)
	assert.Assert(t, strings.Contains(text, "{{ $labels.controller }}"), "Prometheus templates must survive helm")
}
