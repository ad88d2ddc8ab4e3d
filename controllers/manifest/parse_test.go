package manifest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// summary is what a test checks of a parsed document.
type summary struct {
	Pos  string
	Line int
	Key  string
}

func summarize(docs []Document) []summary {
	out := make([]summary, 0, len(docs))
	for _, d := range docs {
		out = append(out, summary{Pos: d.Position(), Line: d.Line, Key: d.Key().String()})
	}
	return out
}

// problems returns the message of each joined error.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	assert.NilError(t, err)
	return b
}

const cmA = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
const cmB = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []summary
	}{
		{
			name: "empty manifest",
			in:   "",
			want: []summary{},
		},
		{
			name: "only separators, comments and blanks",
			in:   "---\n\n---\n# nothing here\n  # indented comment\n---\n...\n",
			want: []summary{},
		},
		{
			name: "leading, doubled and trailing separators",
			in:   "---\n" + cmA + "---\n---\n" + cmB + "---\n",
			want: []summary{
				{Pos: "document 1", Line: 2, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 8, Key: "ConfigMap b"},
			},
		},
		{
			name: "comment-only document does not count",
			in:   cmA + "---\n# disabled: the template rendered nothing\n---\n" + cmB,
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 8, Key: "ConfigMap b"},
			},
		},
		{
			name: "end markers",
			in:   cmA + "...\n---\n" + cmB + "...\n",
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 7, Key: "ConfigMap b"},
			},
		},
		{
			name: "end marker without a following start marker",
			in:   cmA + "...\n" + cmB,
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "separator with a comment and trailing blanks",
			in:   cmA + "--- # next\n" + cmB + "---   \n",
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "null document",
			in:   "~\n---\nnull\n---\n" + cmA,
			want: []summary{{Pos: "document 3", Line: 5, Key: "ConfigMap a"}},
		},
		{
			name: "single JSON object",
			in:   `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"}}`,
			want: []summary{{Pos: "document 1", Line: 1, Key: "Deployment.apps shop/web"}},
		},
		{
			name: "concatenated JSON objects",
			in: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}
{"apiVersion":"v1",
 "kind":"ConfigMap",
 "metadata":{"name":"c"}}`,
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 1, Key: "ConfigMap b"},
				{Pos: "document 3", Line: 2, Key: "ConfigMap c"},
			},
		},
		{
			name: "JSON array",
			in: `[
  {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}},
  {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}}
]`,
			want: []summary{
				{Pos: "document 1 (item 1)", Line: 1, Key: "Namespace shop"},
				{Pos: "document 1 (item 2)", Line: 1, Key: "ConfigMap shop/a"},
			},
		},
		{
			name: "JSON that YAML cannot read",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"url":"http:\/\/x"}}`,
			want: []summary{{Pos: "document 1", Line: 1, Key: "ConfigMap a"}},
		},
		{
			name: "YAML flow mapping",
			in:   "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
			want: []summary{{Pos: "document 1", Line: 1, Key: "ConfigMap a"}},
		},
		{
			name: "YAML flow mapping with a trailing comment",
			in:   "{apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: {q: \"}\", r: '{'}}} # done\n# more\n",
			want: []summary{{Pos: "document 1", Line: 1, Key: "ConfigMap a"}},
		},
		{
			name: "tagged and anchored objects",
			in:   "!!map\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n&top {apiVersion: v1, kind: ConfigMap, metadata: {name: b}} # c\n",
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "JSON after a comment, then YAML",
			in:   "# rendered\n" + `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}` + "\n---\n" + cmB,
			want: []summary{
				{Pos: "document 1", Line: 2, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 4, Key: "ConfigMap b"},
			},
		},
		{
			name: "JSON on the separator line",
			in:   cmA + `--- {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}` + "\n",
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 5, Key: "ConfigMap b"},
			},
		},
		{
			name: "kind List is expanded",
			in: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
---
` + cmB,
			want: []summary{
				{Pos: "document 1 (item 1)", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 1 (item 2)", Line: 1, Key: "Deployment.apps web"},
				{Pos: "document 2", Line: 13, Key: "ConfigMap b"},
			},
		},
		{
			name: "typed list items default to the list's kind",
			in: `apiVersion: v1
kind: ConfigMapList
metadata:
  resourceVersion: "12"
items:
- metadata:
    name: a
- kind: Secret
  metadata:
    name: s
`,
			want: []summary{
				{Pos: "document 1 (item 1)", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 1 (item 2)", Line: 1, Key: "Secret s"},
			},
		},
		{
			name: "empty and null lists",
			in:   "apiVersion: v1\nkind: List\nitems: []\n---\napiVersion: v1\nkind: List\n---\n" + cmA,
			want: []summary{{Pos: "document 3", Line: 8, Key: "ConfigMap a"}},
		},
		{
			name: "custom kind ending in List is an object",
			in:   "apiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: ips\nitems:\n- 10.0.0.1\n",
			want: []summary{{Pos: "document 1", Line: 1, Key: "AllowList.example.com ips"}},
		},
		{
			name: "CRLF line endings",
			in:   strings.ReplaceAll(cmA+"---\n"+cmB, "\n", "\r\n"),
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "lone CR line endings",
			in:   strings.ReplaceAll(cmA+"---\n"+cmB, "\n", "\r"),
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			// YAML breaks lines at U+2028 too; missing that would hide b.
			name: "unicode line separators",
			in:   strings.ReplaceAll(cmA+"---\n"+cmB, "\n", "\u2028"),
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "byte order marks at the start and on each concatenated file",
			in:   "\ufeff" + cmA + "\ufeff---\n" + cmB,
			want: []summary{
				{Pos: "document 1", Line: 1, Key: "ConfigMap a"},
				{Pos: "document 2", Line: 6, Key: "ConfigMap b"},
			},
		},
		{
			name: "tabs after keys and at the end of values",
			in:   "apiVersion:\tv1\nkind: ConfigMap\t\nmetadata:\n  name:\ta\t\ndata:\n  k: \"tab\\tinside\"\n",
			want: []summary{{Pos: "document 1", Line: 1, Key: "ConfigMap a"}},
		},
		{
			name: "indented --- inside a block scalar is content",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  doc: |\n    ---\n    # not a comment\n    ...\n",
			want: []summary{{Pos: "document 1", Line: 1, Key: "ConfigMap a"}},
		},
		{
			name: "directives",
			in:   "%YAML 1.1\n---\n" + cmA,
			want: []summary{{Pos: "document 1", Line: 3, Key: "ConfigMap a"}},
		},
		{
			name: "leading comment moves the document line",
			in:   "# Rendered by Infrahub\n\n" + cmA,
			want: []summary{{Pos: "document 1", Line: 3, Key: "ConfigMap a"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse([]byte(tc.in))
			assert.NilError(t, err)
			assert.DeepEqual(t, summarize(docs), tc.want)
		})
	}
}

func TestParseArtifacts(t *testing.T) {
	docs, err := Parse(readTestdata(t, "webserver-shop.yaml"))
	assert.NilError(t, err)
	assert.DeepEqual(t, summarize(docs), []summary{
		{Pos: "document 1", Line: 2, Key: "Namespace web-shop"},
		{Pos: "document 2", Line: 7, Key: "Deployment.apps web-shop/shop"},
		{Pos: "document 3", Line: 30, Key: "Service web-shop/shop"},
		{Pos: "document 4", Line: 42, Key: "Ingress.networking.k8s.io web-shop/shop"},
	})
	// Numbers are int64 as unstructured helpers expect.
	replicas, found, err := unstructured.NestedInt64(docs[1].Object.Object, "spec", "replicas")
	assert.NilError(t, err)
	assert.Assert(t, found)
	assert.Equal(t, replicas, int64(2))

	docs, err = Parse(readTestdata(t, "vm-db01.yaml"))
	assert.NilError(t, err)
	assert.DeepEqual(t, summarize(docs), []summary{
		{Pos: "document 1", Line: 2, Key: "Namespace vms"},
		{Pos: "document 2", Line: 7, Key: "VirtualMachine.kubevirt.io vms/db01"},
		{Pos: "document 3", Line: 44, Key: "Service vms/db01-ssh"},
	})
	// The "#cloud-config" line in the block scalar is data, not a comment.
	volumes, _, err := unstructured.NestedSlice(docs[1].Object.Object, "spec", "template", "spec", "volumes")
	assert.NilError(t, err)
	userData, _, err := unstructured.NestedString(volumes[1].(map[string]any), "cloudInitNoCloud", "userData")
	assert.NilError(t, err)
	assert.Equal(t, userData, "#cloud-config\nhostname: db01\n")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "not a Kubernetes object",
			in:   "a: b\n",
			want: []string{"document 1 (line 1): apiVersion, kind and metadata.name are missing"},
		},
		{
			name: "missing kind",
			in:   "apiVersion: v1\nmetadata:\n  name: a\n",
			want: []string{"document 1 (line 1): kind is missing"},
		},
		{
			name: "missing name",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n",
			want: []string{"document 1 (line 1): metadata.name is missing"},
		},
		{
			name: "generateName",
			in:   "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n",
			want: []string{"document 1 (line 1): metadata.generateName is not supported: set metadata.name, Vidra tracks objects by name"},
		},
		{
			name: "bad apiVersion and kind",
			in:   "apiVersion: apps/v1/beta\nkind: 'Deploy ment'\nmetadata:\n  name: a\n---\napiVersion: /v1\nkind: A\nmetadata:\n  name: a\n---\napiVersion: Apps/v1\nkind: A\nmetadata:\n  name: a\n---\napiVersion: V1\nkind: A\nmetadata:\n  name: a\n",
			want: []string{
				`document 1 (line 1): apiVersion "apps/v1/beta" is not valid: it must be version or group/version`,
				`document 1 (line 1): kind "Deploy ment" is not valid: it must start with a letter and hold only letters, digits and '-'`,
				`document 2 (line 6): apiVersion "/v1" is not valid: the group before '/' is empty`,
				`document 3 (line 11): apiVersion "Apps/v1" is not valid: the group must be a lowercase DNS name such as apps or example.com`,
				`document 4 (line 16): apiVersion "V1" is not valid: the version must look like v1 or v1beta1`,
			},
		},
		{
			name: "wrong types",
			in:   "apiVersion: 1\nkind: [A]\nmetadata:\n  name: 2024\n  namespace: {a: b}\n  labels: [a]\n  annotations:\n    prometheus.io/scrape: true\n    prometheus.io/port: 8080\n",
			want: []string{
				"document 1 (line 1): apiVersion must be a string",
				"document 1 (line 1): kind must be a string",
				"document 1 (line 1): metadata.name must be a string (quote it)",
				"document 1 (line 1): metadata.namespace must be a string",
				"document 1 (line 1): metadata.labels must be a map of strings",
				`document 1 (line 1): metadata.annotations["prometheus.io/port"] must be a string (quote the value)`,
				`document 1 (line 1): metadata.annotations["prometheus.io/scrape"] must be a string (quote the value)`,
			},
		},
		{
			name: "unsafe name and bad namespace",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../etc\n  namespace: Web_Shop\n",
			want: []string{
				"document 1 (line 1): metadata.name is not valid: it may not be '.' or '..' or contain '/' or '%'",
				`document 1 (line 1): metadata.namespace "Web_Shop" is not a valid namespace name`,
			},
		},
		{
			name: "metadata not a map",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata: a\n",
			want: []string{"document 1 (line 1): metadata must be an object"},
		},
		{
			name: "scalar and list documents",
			in:   "just text\n---\n- a\n- b\n---\n42\n",
			want: []string{
				"document 1 (line 1): document is a string, not an object",
				"document 2 (line 3): document is a list, not an object; use one document per object, or kind: List with items",
				"document 3 (line 6): document is a number, not an object",
			},
		},
		{
			name: "bad list items",
			in:   "apiVersion: v1\nkind: List\nitems:\n- 5\n- apiVersion: v1\n  kind: List\n  items: []\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {}\n---\napiVersion: v1\nkind: List\nitems: {a: b}\n",
			want: []string{
				"document 1 (line 1), item 1: item is a number, not an object",
				"document 1 (line 1), item 2: a list inside a list is not supported",
				"document 1 (line 1), item 3: metadata.name is missing",
				"document 2 (line 12): items of a List must be a list",
			},
		},
		{
			name: "JSON array of non-objects",
			in:   `[1, "x", null]`,
			want: []string{
				"document 1 (line 1), item 1: item is a number, not an object",
				"document 1 (line 1), item 2: item is a string, not an object",
				"document 1 (line 1), item 3: item is null, not an object",
			},
		},
		{
			name: "YAML syntax errors carry manifest lines",
			in:   cmA + "---\n" + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b: c\n" + "---\n" + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n- x\n",
			want: []string{
				"document 2 (line 6): invalid YAML at line 9: mapping values are not allowed in this context",
				"document 3 (line 11): invalid YAML at line 15: did not find expected key",
			},
		},
		{
			name: "tab indentation gets a hint",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n",
			want: []string{"document 1 (line 1): invalid YAML at line 4: found character that cannot start any token (YAML does not allow tabs for indentation)"},
		},
		{
			name: "JSON errors after good values",
			in:   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\n x}",
			want: []string{"document 2 (line 2): invalid JSON at line 3: invalid character looking for beginning of value"},
		},
		{
			name: "JSON that is not YAML either",
			in:   "{\"apiVersion\": \"v1\",\n\"kind\": \"ConfigMap\"\n\"metadata\": {}}",
			want: []string{"document 1 (line 1): invalid JSON at line 3: invalid character after object key:value pair"},
		},
		{
			// YAML reads the first and ignores the rest: never accept that.
			name: "YAML flow mappings without separators",
			in:   "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
			want: []string{"document 1 (line 1): text after the end of the object; separate documents with ---"},
		},
		{
			name: "tagged YAML flow mappings without separators",
			in:   "!!map {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n&x # anchor\n [1]\n [2]\n",
			want: []string{
				"document 1 (line 1): text after the end of the object; separate documents with ---",
				"document 2 (line 4): text after the end of the object; separate documents with ---",
			},
		},
		{
			name: "JSON stream whose first object is only YAML",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"n":1e999}}{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`,
			want: []string{"document 1 (line 1): text after the end of the object; separate documents with ---"},
		},
		{
			name: "truncated JSON",
			in:   "{\"apiVersion\": \"v1\",\n",
			want: []string{"document 1 (line 1): invalid JSON at line 2: unexpected end of input"},
		},
		{
			name: "all documents are reported",
			in:   "a: 1\n---\nb: 2\n---\n" + cmA + "---\nc: [\n",
			want: []string{
				"document 1 (line 1): apiVersion, kind and metadata.name are missing",
				"document 2 (line 3): apiVersion, kind and metadata.name are missing",
				"document 4 (line 10): invalid YAML at line 11: did not find expected node content",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse([]byte(tc.in))
			assert.Assert(t, err != nil)
			assert.Assert(t, is.Nil(docs), "no documents on error")
			assert.DeepEqual(t, problems(err), tc.want)
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var pe *ParseError
				assert.Assert(t, errors.As(e, &pe))
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		_, err := ParseWithOptions([]byte(cmA), ParseOptions{MaxBytes: 10})
		assert.Error(t, err, "manifest: 51 bytes is over the limit of 10 bytes")
		var pe *ParseError
		assert.Assert(t, errors.As(err, &pe))
		assert.Equal(t, pe.Document, 0)

		big := make([]byte, DefaultMaxBytes+1)
		_, err = Parse(big)
		assert.ErrorContains(t, err, "over the limit of 16777216 bytes")
	})
	t.Run("error count", func(t *testing.T) {
		in := strings.Repeat("a: b\n---\n", 30)
		_, err := ParseWithOptions([]byte(in), ParseOptions{MaxErrors: 3})
		got := problems(err)
		assert.Equal(t, len(got), 4)
		assert.Equal(t, got[3], "manifest: stopped after 3 problems; the rest was not checked")
		_, err = Parse([]byte(in))
		assert.Equal(t, len(problems(err)), DefaultMaxErrors+1)

		// Exactly at the cap nothing was skipped.
		_, err = ParseWithOptions([]byte(strings.Repeat("a: b\n---\n", 3)), ParseOptions{MaxErrors: 3})
		assert.Equal(t, len(problems(err)), 3)

		// Items and JSON values after the cap are skipped too.
		_, err = ParseWithOptions([]byte("[1, 2, 3, 4]"), ParseOptions{MaxErrors: 2})
		assert.DeepEqual(t, problems(err), []string{
			"document 1 (line 1), item 1: item is a number, not an object",
			"document 1 (line 1), item 2: item is a number, not an object",
			"manifest: stopped after 2 problems; the rest was not checked",
		})
		_, err = ParseWithOptions([]byte(`{"a":1} {"b":2}`), ParseOptions{MaxErrors: 1})
		assert.DeepEqual(t, problems(err), []string{
			"document 1 (line 1): apiVersion, kind and metadata.name are missing",
			"manifest: stopped after 1 problems; the rest was not checked",
		})
	})
}

func TestParseNormalizesNullLabelValues(t *testing.T) {
	docs, err := Parse([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    version:\n    app: web\n"))
	assert.NilError(t, err)
	assert.DeepEqual(t, docs[0].Object.GetLabels(), map[string]string{"version": "", "app": "web"})
}

func TestParseErrorString(t *testing.T) {
	tests := []struct {
		err  ParseError
		want string
	}{
		{ParseError{Msg: "too big"}, "manifest: too big"},
		{ParseError{Document: 3, Msg: "m"}, "document 3: m"},
		{ParseError{Document: 3, Line: 12, Msg: "m"}, "document 3 (line 12): m"},
		{ParseError{Document: 3, Item: 2, Line: 12, Msg: "m"}, "document 3 (line 12), item 2: m"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.err.Error(), tc.want)
	}
}

// secretValue is planted in broken Secrets; no error may repeat it.
const secretValue = "s3cr3t-Hunter2"

func TestParseErrorsNeverQuoteValues(t *testing.T) {
	head := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
	inputs := []string{
		head + "stringData:\n  password: *" + secretValue + "\n",
		head + "stringData:\n  password: &" + secretValue + " [*" + secretValue + "]\n",
		head + "data:\n  ~: " + secretValue + "\n",
		head + "data:\n  ? [" + secretValue + "]\n  : x\n",
		head + "data:\n  ? {" + secretValue + ": 1}\n  : x\n",
		head + "stringData:\n  password: \"" + secretValue + "\\q\"\n",
		head + "stringData:\n  password: " + secretValue + ": x\n",
		head + "stringData:\n\tpassword: " + secretValue + "\n",
		head + "stringData:\n  password: '" + secretValue + "\n",
		head + "stringData:\n  password: !!binary " + secretValue + "\n",
		head + "stringData:\n  password: !!int " + secretValue + "\n",
		head + "stringData:\n  password: [" + secretValue + "\n",
		head + "stringData:\n  a: " + secretValue + "\n b: x\n",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"stringData":{"p":[` + secretValue + `}}`,
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"stringData":{"p":"` + secretValue + `}}`,
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}` + "\n" + `{"stringData":{"p":"x"` + secretValue + `}}`,
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"},"data":{"p":1e999}}` + secretValue,
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + secretValue + "\n  namespace: x\n" + "stringData: {p: " + secretValue + "}\nextra: [" + secretValue,
		secretValue + "\n",
		"- " + secretValue + "\n",
	}
	for i, in := range inputs {
		_, err := Parse([]byte(in))
		assert.Assert(t, err != nil, "input %d", i)
		msg := strings.ReplaceAll(err.Error(), "\n", " | ")
		t.Log(msg)
		assert.Assert(t, !strings.Contains(strings.ToLower(msg), strings.ToLower(secretValue[1:len(secretValue)-1])), "input %d: %s", i, msg)
	}
}

func TestOnlyOneFlowCollection(t *testing.T) {
	tests := map[string]bool{
		"{a: 1}":                   true,
		"{a: 1} # c":               true,
		"{a: 1}\n# c\n  \n":        true,
		"[1, [2, {x: y}]]":         true,
		`{a: "}"}`:                 true,
		`{a: '}'}`:                 true,
		`{a: 'it''s'}`:             true,
		`{a: "\"}"}`:               true,
		"{a: b#c}":                 true,
		"{a: 1 #}\n}":              true,
		"{a: it's} {b: 2}":         false,
		"{a: 1} x":                 false,
		"{a: 1}{b: 2}":             false,
		"{a: 1}\n---":              false,
		"{a: [1}":                  false,
		"{":                        false,
		"{a: 'open}":               false,
		"{a: 1}#not a comment {b}": false,
	}
	for in, want := range tests {
		assert.Equal(t, onlyOneFlowCollection([]byte(in)), want, "%q", in)
	}
}
