package metricstest

import (
	"math"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

const good = `# HELP a_total Things.
# TYPE a_total counter
a_total{x="1",y="with \"quotes\" and \\ and \n"} 3
a_total{x="2",} 4 1700000000000
# A plain comment.
# HELP h_seconds Durations.
# TYPE h_seconds histogram
h_seconds_bucket{op="a",le="0.1"} 1
h_seconds_bucket{op="a",le="1"} 1
h_seconds_bucket{op="a",le="+Inf"} 2
h_seconds_sum{op="a"} 5.05
h_seconds_count{op="a"} 2
# HELP g Level.
# TYPE g gauge
g -Inf
`

func TestParseGood(t *testing.T) {
	fams, err := Parse(strings.NewReader(good))
	assert.NilError(t, err)
	assert.Equal(t, len(fams), 3)
	v, ok := fams.Value("a_total", map[string]string{"y": "with \"quotes\" and \\ and \n"})
	assert.Assert(t, ok)
	assert.Equal(t, v, 3.0)
	assert.Equal(t, fams.Sum("a_total", nil), 7.0)
	v, ok = fams.Value("h_seconds_count", map[string]string{"op": "a"})
	assert.Assert(t, ok)
	assert.Equal(t, v, 2.0)
	v, _ = fams.Value("g", nil)
	assert.Assert(t, math.IsInf(v, -1))
}

func TestParseRejects(t *testing.T) {
	for name, text := range map[string]string{
		"sample before TYPE":  "# HELP a x\na 1\n",
		"no HELP":             "# TYPE a gauge\na 1\n",
		"unknown type":        "# HELP a x\n# TYPE a meter\na 1\n",
		"bad metric name":     "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
		"bad label name":      "# HELP a x\n# TYPE a gauge\na{1x=\"v\"} 1\n",
		"unquoted label":      "# HELP a x\n# TYPE a gauge\na{x=v} 1\n",
		"bad escape":          "# HELP a x\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
		"unterminated labels": "# HELP a x\n# TYPE a gauge\na{x=\"v\" 1\n",
		"duplicate label":     "# HELP a x\n# TYPE a gauge\na{x=\"v\",x=\"w\"} 1\n",
		"duplicate series":    "# HELP a x\n# TYPE a gauge\na{x=\"v\"} 1\na{x=\"v\"} 2\n",
		"bad value":           "# HELP a x\n# TYPE a gauge\na one\n",
		"negative counter":    "# HELP a_total x\n# TYPE a_total counter\na_total -1\n",
		"interleaved":         "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",
		"family twice":        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n# HELP a x\n# TYPE a gauge\n",
		"empty family":        "# HELP a x\n# TYPE a gauge\n",
		"no +Inf":             "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"decreasing buckets":  "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"unsorted le":         "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"count mismatch":      "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"no sum":              "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
		"bare histogram name": "# HELP h x\n# TYPE h histogram\nh 1\n",
		"second HELP":         "# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n",
		"trailing junk":       "# HELP a x\n# TYPE a gauge\na 1 2 3\n",
	} {
		_, err := Parse(strings.NewReader(text))
		assert.Assert(t, err != nil, "%s: accepted", name)
	}
}
