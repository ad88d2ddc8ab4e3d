package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vidra-operator/vidra/test/controlplane"
)

// runUntilExit runs the operator binary with the kubeconfig and returns its
// exit code and output.
func runUntilExit(t *testing.T, kubeconfig string, timeout time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, operatorBin, "-kubeconfig", kubeconfig, "-namespace", operatorNamespace,
		"-metrics-bind-address", freeAddr(t), "-health-probe-bind-address", freeAddr(t), "-log-format=text", "-config-map=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	assert.Assert(t, ctx.Err() == nil, "the operator did not exit within %v:\n%s", timeout, out.String())
	return exitCode(err), out.String()
}

// TestMissingCRDsAreNamed: on a cluster without Vidra's CRDs the operator
// stops at start-up and its log says which CRDs are missing and how to
// install them, instead of looping on "the server could not find the
// requested resource".
func TestMissingCRDsAreNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bare, err := controlplane.Start(ctx, controlplane.Config{Name: "e2e-no-crds", Logf: t.Logf})
	assert.NilError(t, err)
	t.Cleanup(func() { _ = bare.Stop() })

	code, log := runUntilExit(t, bare.KubeconfigPath(), time.Minute)
	assert.Assert(t, code != 0, "exit code %d:\n%s", code, log)
	for _, want := range []string{
		"CRDs infrahubsyncs.infrahub.operators.com, gitsyncs.infrahub.operators.com and vidraresources.infrahub.operators.com",
		"are not installed: apply manifests/crds",
		"or install the chart",
	} {
		assert.Assert(t, strings.Contains(log, want), "log lacks %q:\n%s", want, log)
	}
	assert.Assert(t, !strings.Contains(log, "could not find the requested resource"), log)
}

// TestUnreachableAPIServerIsNamed: with nothing listening at the API
// server's address, the operator retries for a while, then exits naming the
// server and the cause (connection refused), not a rate limiter error.
func TestUnreachableAPIServerIsNamed(t *testing.T) {
	server := "https://" + freeAddr(t) // nothing listens there any more
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "unused"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	assert.NilError(t, clientcmd.WriteToFile(*cfg, path))

	code, log := runUntilExit(t, path, 2*time.Minute)
	assert.Assert(t, code != 0, "exit code %d:\n%s", code, log)
	assert.Assert(t, strings.Contains(log, "API server "+server+" is unreachable"), log)
	assert.Assert(t, strings.Contains(log, "connection refused"), log)
	assert.Assert(t, strings.Contains(log, "API server not reachable yet, retrying"), log)
	assert.Assert(t, !strings.Contains(log, "rate limiter"), log)
}
