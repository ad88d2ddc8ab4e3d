package e2e

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// TestBinaryIsStatic: the binary `make build` and the Dockerfile produce
// needs no dynamic loader and no shared library, so it runs on distroless
// static or scratch.
func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(operatorBin)
	if err != nil {
		// make build targets Linux: a binary that is not ELF is a failure.
		t.Fatalf("open %s as ELF: %v", operatorBin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		assert.Assert(t, p.Type != elf.PT_INTERP, "the binary has a PT_INTERP program header (dynamic loader)")
		assert.Assert(t, p.Type != elf.PT_DYNAMIC, "the binary has a PT_DYNAMIC program header")
	}
	libs, err := f.ImportedLibraries()
	assert.NilError(t, err)
	assert.Equal(t, len(libs), 0, "DT_NEEDED: %v", libs)
	assert.Assert(t, f.Section(".interp") == nil)
}

// TestDockerfile checks what the image promises: a CGO-free build of the
// operator, a distroless-static (or scratch) final stage, and a numeric
// non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	assert.NilError(t, err)
	text := string(b)
	var froms []string
	var user string
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, line)
			user = "" // USER is per stage
		case "USER":
			user = fields[1]
		}
	}
	assert.Assert(t, len(froms) >= 2, "not multi-stage: %v", froms)
	final := froms[len(froms)-1]
	assert.Assert(t, strings.Contains(final, "distroless/static") || strings.Contains(final, "scratch"), "final stage: %s", final)
	assert.Assert(t, regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user), "final USER %q is not a numeric non-root user", user)
	assert.Assert(t, strings.Contains(text, "CGO_ENABLED=0"))
	assert.Assert(t, strings.Contains(text, "./cmd/vidra-operator"))
	assert.Assert(t, strings.Contains(text, `ENTRYPOINT ["/vidra-operator"]`))
}
