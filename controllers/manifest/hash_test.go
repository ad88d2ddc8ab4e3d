package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func parseOne(t testing.TB, manifest string) *unstructured.Unstructured {
	t.Helper()
	docs, err := Parse([]byte(manifest))
	assert.NilError(t, err)
	assert.Equal(t, len(docs), 1)
	return docs[0].Object
}

const hashBase = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: web
  labels:
    app: shop
data:
  a: "1"
  b: two
`

func TestContentHashIgnoresFormatting(t *testing.T) {
	want := ContentHash(parseOne(t, hashBase))
	same := map[string]string{
		"key order and flow style": "{kind: ConfigMap, data: {b: two, a: '1'}, metadata: {namespace: web, labels: {app: shop}, name: cfg}, apiVersion: v1}",
		"JSON":                     `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop"}},"data":{"a":"1","b":"two"}}`,
		"comments and CRLF":        "# hi\r\napiVersion: v1\r\nkind: ConfigMap # the kind\r\nmetadata:\r\n  labels: {app: shop}\r\n  name: cfg\r\n  namespace: web\r\ndata:\r\n  b: \"two\"\r\n  a: '1'\r\n",
		"Vidra markers": `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: web
  labels:
    app: shop
    managed-by: vidra
  annotations:
    managed-by: vidra
    vidraresource.infrahub.operators.com/owned-by: a,b
    vidraresource.infrahub.operators.com/content-hash: abc
data:
  a: "1"
  b: two
`,
		"status": hashBase + "status:\n  phase: Ready\n",
	}
	for name, in := range same {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, ContentHash(parseOne(t, in)), want)
		})
	}

	live := parseOne(t, hashBase)
	live.SetResourceVersion("42")
	live.SetUID("0b8f6a3e-1111-2222-3333-444455556666")
	live.SetGeneration(7)
	live.Object["metadata"].(map[string]any)["creationTimestamp"] = "2026-01-01T00:00:00Z"
	live.Object["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{"manager": "vidra"}}
	assert.Equal(t, ContentHash(live), want, "server-owned metadata")
}

func TestContentHashSeesChanges(t *testing.T) {
	base := ContentHash(parseOne(t, hashBase))
	different := map[string]string{
		"value":          `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop"}},"data":{"a":"1","b":"three"}}`,
		"string vs int":  `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop"}},"data":{"a":1,"b":"two"}}`,
		"other label":    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop","tier":"x"}},"data":{"a":"1","b":"two"}}`,
		"namespace":      `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web2","labels":{"app":"shop"}},"data":{"a":"1","b":"two"}}`,
		"apiVersion":     `{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop"}},"data":{"a":"1","b":"two"}}`,
		"null vs absent": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"web","labels":{"app":"shop"}},"data":{"a":"1","b":"two"},"immutable":null}`,
	}
	for name, in := range different {
		t.Run(name, func(t *testing.T) {
			assert.Assert(t, ContentHash(parseOne(t, in)) != base)
		})
	}
}

func TestContentHashCanonicalJSON(t *testing.T) {
	u := parseOne(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels:
    managed-by: vidra
data:
  quote: "say \"hi\" \\ <b>&amp;"
  ctl: "tab\tnewline\n"
  uni: "grüße ✓"
replicas: 3
ratio: 0.25
big: 1e20
`)
	// Reproducible with a plain JSON encoder over the cleaned object.
	clean := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": "cfg"},
		"data":       u.Object["data"],
		"replicas":   3,
		"ratio":      0.25,
		"big":        1e20,
	}
	buf, err := json.Marshal(clean)
	assert.NilError(t, err)
	assert.Equal(t, string(appendCanonical(nil, hashInput(u))), string(unescapeHTML(buf)))
	sum := sha256.Sum256(unescapeHTML(buf))
	assert.Equal(t, ContentHash(u), hex.EncodeToString(sum[:]))
}

// unescapeHTML undoes encoding/json's HTML escaping, which canonical JSON
// does not do.
func unescapeHTML(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+5 < len(b) && b[i+1] == 'u' && b[i+2] == '0' && b[i+3] == '0' {
			switch string(b[i+4 : i+6]) {
			case "3c":
				out = append(out, '<')
				i += 5
				continue
			case "3e":
				out = append(out, '>')
				i += 5
				continue
			case "26":
				out = append(out, '&')
				i += 5
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

func TestContentHashNumbers(t *testing.T) {
	mk := func(v any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "X", "metadata": map[string]any{"name": "x"}, "n": v}}
	}
	assert.Equal(t, ContentHash(mk(int64(2))), ContentHash(mk(float64(2))))
	assert.Equal(t, ContentHash(mk(int64(2))), ContentHash(mk(json.Number("2"))))
	assert.Equal(t, ContentHash(mk(int64(2))), ContentHash(mk(2)))
	assert.Assert(t, ContentHash(mk(int64(2))) != ContentHash(mk(2.5)))
	assert.Assert(t, ContentHash(mk(math.NaN())) != "", "never fails")
	assert.Equal(t, ContentHash(nil), "")
	// The golden value pins the format: changing it re-hashes every
	// object Vidra manages, which must be a deliberate decision.
	assert.Equal(t, ContentHash(parseOne(t, hashBase)), goldenHash)
}

// goldenHash is sha256 of
// {"apiVersion":"v1","data":{"a":"1","b":"two"},"kind":"ConfigMap","metadata":{"labels":{"app":"shop"},"name":"cfg","namespace":"web"}}
const goldenHash = "46d0c0574ce3ac41ec9c8411ceb9c392598387c3534eaf474a78b57c3bc37569"
