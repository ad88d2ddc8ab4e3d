package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// modulePath identifies the repository root when walking up from the
// working directory.
const modulePath = "github.com/vidra-operator/vidra"

// BinDirEnv names the environment variable that points the harness at an
// existing directory of binaries instead of building them.
const BinDirEnv = "VIDRA_CONTROLPLANE_BIN_DIR"

// binaries the harness needs in the bin dir.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}

var (
	binDirMu     sync.Mutex
	binDirCached string
)

// BinDir returns the directory holding etcd, kube-apiserver,
// kube-controller-manager and kubectl. With VIDRA_CONTROLPLANE_BIN_DIR set it
// only checks that directory; otherwise it runs hack/controlplane/build.sh of
// the enclosing repository, which returns at once when the binaries are
// cached and otherwise builds them (several minutes the first time; progress
// goes to stderr). The result is remembered for the life of the process.
func BinDir(ctx context.Context) (string, error) {
	binDirMu.Lock()
	defer binDirMu.Unlock()
	if binDirCached != "" {
		return binDirCached, nil
	}
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		if dir, err = runBuildScript(ctx, root); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving bin dir: %w", err)
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("control-plane binary missing (run hack/controlplane/build.sh or fix %s): %w", BinDirEnv, err)
		}
	}
	binDirCached = dir
	return dir, nil
}

func runBuildScript(ctx context.Context, root string) (string, error) {
	script := filepath.Join(root, "hack", "controlplane", "build.sh")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr // build progress, so a cold build does not look hung
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building control-plane binaries with %s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no bin dir", script)
	}
	return dir, nil
}

// RepoRoot finds the root of the vidra repository by walking up from the
// working directory (a package directory under go test) to the go.mod that
// declares module github.com/vidra-operator/vidra.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for dir := wd; ; {
		if isVidraModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding repository root: no go.mod of module " + modulePath +
				" above " + wd + " (set " + BinDirEnv + " to use prebuilt binaries)")
		}
		dir = parent
	}
}

func isVidraModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}
