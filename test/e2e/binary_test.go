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
	// Every base image pinned by digest, with its tag kept for readers.
	pinned := regexp.MustCompile(`\s[^\s@]+:[^\s@]+@sha256:[0-9a-f]{64}(\s|$)`)
	for _, from := range froms {
		assert.Assert(t, pinned.MatchString(from), "base image not pinned by tag@sha256 digest: %s", from)
	}
	final := froms[len(froms)-1]
	assert.Assert(t, strings.Contains(final, "distroless/static") || strings.Contains(final, "scratch"), "final stage: %s", final)
	assert.Assert(t, regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user), "final USER %q is not a numeric non-root user", user)
	assert.Assert(t, strings.Contains(text, "CGO_ENABLED=0"))
	assert.Assert(t, strings.Contains(text, "./cmd/vidra-operator"))
	assert.Assert(t, strings.Contains(text, `ENTRYPOINT ["/vidra-operator"]`))
}

// TestBuildContext: the image's build context leaves out the local tool
// cache, binaries and git history, and the module carries its licence.
func TestBuildContext(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	assert.NilError(t, err)
	ignored := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignored[strings.Trim(line, "/")] = true
		}
	}
	for _, p := range []string{".cache", "bin", ".git", "test"} {
		assert.Assert(t, ignored[p], ".dockerignore does not exclude %s", p)
	}

	lic, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(string(lic), "Apache License\n                           Version 2.0, January 2004"))
	assert.Assert(t, strings.Contains(string(lic), "END OF TERMS AND CONDITIONS"))
}
