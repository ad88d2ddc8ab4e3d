package api

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// TestVendoringTheClientsAddsNothingBeyondClientGo builds a throwaway module
// that vendors Vidra's generated clientset, and checks its vendor tree holds
// no module that a plain client-go consumer does not also vendor.
func TestVendoringTheClientsAddsNothingBeyondClientGo(t *testing.T) {
	repo := repoRoot(t)

	consumer := writeModule(t, "example.com/consumer", `package main

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/generated/informers/externalversions"
)

func main() {
	cfg, err := clientcmd.BuildConfigFromFlags("", "")
	if err != nil {
		panic(err)
	}
	c := versioned.NewForConfigOrDie(cfg)
	f := externalversions.NewSharedInformerFactory(c, 0)
	fmt.Println(f.Infrahub().V1alpha1().InfrahubSyncs().Lister() != nil)
}
`, "require github.com/vidra-operator/vidra v0.0.0\nreplace github.com/vidra-operator/vidra => "+repo+"\n")
	baseline := writeModule(t, "example.com/baseline", `package main

import (
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	cfg, err := clientcmd.BuildConfigFromFlags("", "")
	if err != nil {
		panic(err)
	}
	f := informers.NewSharedInformerFactory(kubernetes.NewForConfigOrDie(cfg), 0)
	fmt.Println(f.Core().V1().ConfigMaps().Lister() != nil)
}
`, "require k8s.io/client-go "+clientGoVersion(t, repo)+"\n")

	for _, dir := range []string{consumer, baseline} {
		goCmd(t, dir, "mod", "tidy")
		goCmd(t, dir, "mod", "vendor")
	}
	// -trimpath lets the vendored packages reuse the build cache of the
	// module-cache builds instead of compiling client-go again.
	goCmd(t, consumer, "build", "-mod=vendor", "-trimpath", "-o", os.DevNull, ".")

	allowed := vendoredModules(t, baseline)
	var extra []string
	for m := range vendoredModules(t, consumer) {
		if m == "github.com/vidra-operator/vidra" || allowed[m] {
			continue
		}
		if strings.HasPrefix(m, "k8s.io/") || strings.HasPrefix(m, "sigs.k8s.io/") {
			continue
		}
		extra = append(extra, m)
	}
	sort.Strings(extra)
	assert.Assert(t, len(extra) == 0, "vendoring Vidra's clients pulls modules a client-go consumer does not: %v", extra)
	assert.Assert(t, vendoredModules(t, consumer)["github.com/vidra-operator/vidra"], "the consumer did not vendor Vidra")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	assert.NilError(t, err)
	return root
}

func clientGoVersion(t *testing.T, repo string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	assert.NilError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "k8s.io/client-go" {
			return fields[1]
		}
	}
	t.Fatal("k8s.io/client-go not in go.mod")
	return ""
}

func writeModule(t *testing.T, path, main, requires string) string {
	t.Helper()
	dir := t.TempDir()
	gomod := "module " + path + "\n\ngo 1.26\n\n" + requires
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	return dir
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "go %s in %s:\n%s", strings.Join(args, " "), dir, out)
}

// vendoredModules reads the module paths from vendor/modules.txt.
func vendoredModules(t *testing.T, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "vendor", "modules.txt"))
	assert.NilError(t, err)
	defer f.Close()
	mods := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "#" {
			mods[fields[1]] = true
		}
	}
	assert.NilError(t, s.Err())
	return mods
}
