package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/infrahub"
)

// loadTargetDatePattern reads the regular expression the API server enforces
// (the CEL rule self.matches(r'...') of the generated CRD), so these tests
// check what users actually get. CEL's matches uses RE2, as Go does.
func loadTargetDatePattern() (*regexp.Regexp, error) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "manifests", "crds", "infrahub.operators.com_infrahubsyncs.yaml"))
	if err != nil {
		return nil, err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, err
	}
	node := any(crd)
	for _, step := range []any{"spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties",
		"source", "properties", "targetDate", "x-kubernetes-validations", 0, "rule"} {
		switch s := step.(type) {
		case string:
			m, _ := node.(map[string]any)
			node = m[s]
		case int:
			l, _ := node.([]any)
			if len(l) <= s {
				return nil, fmt.Errorf("no element %d", s)
			}
			node = l[s]
		}
	}
	rule, ok := node.(string)
	if !ok {
		return nil, fmt.Errorf("targetDate has no validation rule in the CRD")
	}
	const prefix, suffix = "self.matches(r'", "')"
	if !strings.HasPrefix(rule, prefix) || !strings.HasSuffix(rule, suffix) {
		return nil, fmt.Errorf("targetDate rule %q is not self.matches(r'...')", rule)
	}
	return regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(rule, prefix), suffix))
}

// The CRD admits a subset of what Infrahub accepts: anything it lets through
// Infrahub parses (apart from calendar checks such as February 30, which the
// controller reports), and the documented forms pass both.
func TestTargetDatePatternAgreesWithInfrahub(t *testing.T) {
	pattern, err := loadTargetDatePattern()
	assert.NilError(t, err)
	both := []string{
		"2026-08-20T10:00:00Z", "2026-08-20T10:00:00.123456+02:00", "2026-08-20T10:00:00",
		"2026-08-20", "2h", "now-2h", "1h30m", "-15m", "30s", "now+2h",
	}
	for _, s := range both {
		assert.Assert(t, pattern.MatchString(s), "CRD rejects %q", s)
		assert.NilError(t, infrahub.ValidateAt(s), "Infrahub rejects %q", s)
	}
	neither := []string{"", "-2d", "yesterday", "now", "2026-13-01", "2026-08-20T25:00:00Z", "2026/08/20"}
	for _, s := range neither {
		if s != "" {
			assert.Assert(t, !pattern.MatchString(s), "CRD accepts %q", s)
		}
		assert.Assert(t, infrahub.ValidateAt(s) != nil, "Infrahub accepts %q", s)
	}
	// Forms Infrahub accepts that the CRD does not (documented as a subset).
	for _, s := range []string{"20260820T100000Z", "2026-08-20 10:00:00Z", "2026-08-20T10:00:00+0200"} {
		if infrahub.ValidateAt(s) == nil {
			assert.Assert(t, !pattern.MatchString(s), "expected %q outside the CRD subset", s)
		}
	}
}

// FuzzTargetDatePattern checks the subset property on arbitrary input.
func FuzzTargetDatePattern(f *testing.F) {
	for _, s := range []string{"2026-08-20T10:00:00Z", "2h", "2026-02-30", "x9m", "2026-08-20T10:00:00.5-01:30"} {
		f.Add(s)
	}
	pattern, err := loadTargetDatePattern()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 || !pattern.MatchString(s) {
			return
		}
		if err := infrahub.ValidateAt(s); err != nil && !calendarOnly.MatchString(s) {
			t.Fatalf("CRD accepts %q but Infrahub rejects it: %v", s, err)
		}
	})
}

// calendarOnly matches dates whose only fault can be a day past the end of
// its month, which a regular expression cannot know.
var calendarOnly = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(29|30|31)`)
