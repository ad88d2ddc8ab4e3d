// Package ui proves `kubectl vidra ui` in a real browser: the plugin binary
// serves the dashboard against a real control plane, headless Chromium
// (Debian's package, installed by hack/chromium.sh when missing) loads it,
// and the test reads the page's DOM through the DevTools protocol: the tree
// of syncs, VidraResources and objects, a live update when the cluster
// changes, and the branch diff. Screenshots are saved under screenshots/
// (git-ignored) for people to look at; the test compares structure, never
// pixels.
package ui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidra-operator/vidra/test/controlplane"
)

var (
	cp        *controlplane.ControlPlane
	pluginBin string
	chromium  string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := controlplane.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if chromium, err = findChromium(root); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-vidra-ui-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginBin = filepath.Join(dir, "kubectl-vidra")
	build := exec.Command("go", "build", "-o", pluginBin, "github.com/vidra-operator/vidra/cmd/kubectl-vidra")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: building kubectl-vidra: %v\n%s", err, out)
		return 1
	}
	return controlplane.RunMain(m, controlplane.Config{
		Name:     "ui",
		CRDPaths: []string{filepath.Join(root, "manifests", "crds")},
	}, &cp)
}

// findChromium returns $VIDRA_CHROMIUM, else runs hack/chromium.sh, which
// installs Debian's chromium when it is missing and prints its path.
func findChromium(root string) (string, error) {
	if p := os.Getenv("VIDRA_CHROMIUM"); p != "" {
		return p, nil
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "chromium.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/chromium.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}
