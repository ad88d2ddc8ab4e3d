package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func testApp(env map[string]string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &app{
		stdin:  strings.NewReader(""),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return env[k] },
		now:    func() time.Time { return treeNow },
	}, &out, &errOut
}

func TestFlagsAnywhere(t *testing.T) {
	a, _, _ := testApp(nil)
	f := a.newFlags("diff", "usage")
	branch := f.String("branch", "", "")
	unified := f.IntP("unified", "U", 3, "")
	pos, err := f.parse([]string{"--branch", "feature", "mysync", "-U", "5", "--context=prod", "-n", "ops", "--as", "jane", "--", "--weird"})
	assert.NilError(t, err)
	assert.DeepEqual(t, pos, []string{"mysync", "--weird"})
	assert.Equal(t, *branch, "feature")
	assert.Equal(t, *unified, 5)
	assert.Equal(t, a.kube.overrides.CurrentContext, "prod")
	assert.Equal(t, a.kube.overrides.AuthInfo.Impersonate, "jane")
	assert.Equal(t, a.kube.namespace(), "ops")
	assert.Assert(t, f.isSet("unified"))
	assert.Assert(t, !f.isSet("kubeconfig"))
}

func TestRootFlagsSurviveCommandFlags(t *testing.T) {
	// --context before the command must not be reset when the command
	// registers the same flag.
	a, out, _ := testApp(nil)
	code := run(context.Background(), []string{"--context", "prod", "-n", "ops", "version"}, a)
	assert.Equal(t, code, exitOK)
	assert.Equal(t, a.kube.overrides.CurrentContext, "prod")
	assert.Equal(t, a.kube.namespace(), "ops")
	assert.Assert(t, strings.HasPrefix(out.String(), "kubectl-vidra "), out.String())
}

func TestErrorsAreOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"diff"},
		{"diff", "a", "b"},
		{"status", "--output", "xml"},
		{"reconcile", "--no-such-flag", "x"},
		{"credentials"},
		{"credentials", "create", "ftp://x"},
		{"credentials", "create", "https://x"},
		{"cluster", "remove"},
	} {
		a, out, errOut := testApp(nil)
		code := run(context.Background(), args, a)
		assert.Equal(t, code, exitUsage, "%v", args)
		assert.Equal(t, out.String(), "", "%v", args)
		assert.Equal(t, strings.Count(errOut.String(), "\n"), 1, "%v: %q", args, errOut.String())
		assert.Assert(t, strings.HasPrefix(errOut.String(), "error: "), "%v: %q", args, errOut.String())
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{}, {"help"}, {"--help"}, {"help", "diff"}, {"diff", "--help"}, {"status", "-h"},
		{"credentials", "--help"}, {"help", "credentials"}, {"cluster", "add", "-h"}, {"help", "reconcile"},
	} {
		a, out, errOut := testApp(nil)
		code := run(context.Background(), args, a)
		assert.Equal(t, code, exitOK, "%v: %s", args, errOut.String())
		assert.Equal(t, errOut.String(), "", "%v", args)
		assert.Assert(t, strings.Contains(out.String(), "Usage:"), "%v: %s", args, out.String())
	}
	a, out, _ := testApp(nil)
	run(context.Background(), []string{"help", "diff"}, a)
	for _, want := range []string{"--branch", "--at", "-U, --unified", "-n/--namespace", "--kubeconfig", "--color"} {
		assert.Assert(t, strings.Contains(out.String(), want), "missing %q in:\n%s", want, out.String())
	}
}

func TestUseColor(t *testing.T) {
	a, _, _ := testApp(map[string]string{})
	a.isTTY = true
	assert.Assert(t, a.useColor("auto"))
	assert.Assert(t, !a.useColor("never"))
	a, _, _ = testApp(map[string]string{"NO_COLOR": "1"})
	a.isTTY = true
	assert.Assert(t, !a.useColor("auto"))
	assert.Assert(t, a.useColor("always"))
	a, _, _ = testApp(map[string]string{})
	a.isTTY = false
	assert.Assert(t, !a.useColor("auto"))
}

func TestObjectName(t *testing.T) {
	assert.Equal(t, objectName("infrahub-credentials-", "infrahub.example.com"), "infrahub-credentials-infrahub.example.com")
	assert.Equal(t, objectName("cluster-kubeconfig-", "kind-prod"), "cluster-kubeconfig-kind-prod")
	// Altered text gets a hash, so "Prod" and "prod" differ.
	a, b := objectName("cluster-kubeconfig-", "Prod"), objectName("cluster-kubeconfig-", "prod")
	assert.Assert(t, a != b)
	assert.Assert(t, strings.HasPrefix(a, "cluster-kubeconfig-prod-"), a)
	long := objectName("cluster-kubeconfig-", "arn:aws:eks:eu-west-1:123456789012:cluster/"+strings.Repeat("x", 300))
	assert.NilError(t, validSecretName(long))
	assert.NilError(t, validSecretName(objectName("p-", "::1")))
}

func TestInfrahubURL(t *testing.T) {
	base, host, err := infrahubURL("https://Infrahub.Example.com:8443/")
	assert.NilError(t, err)
	assert.Equal(t, base, "https://Infrahub.Example.com:8443")
	assert.Equal(t, host, "infrahub.example.com")
	for _, bad := range []string{"infrahub", "ftp://x", "https://u:p@x", "https://x/?q=1", ""} {
		_, _, err := infrahubURL(bad)
		assert.Assert(t, err != nil, bad)
	}
}

func TestExportContext(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c1"] = &clientcmdapi.Cluster{Server: "https://c1.example.com:6443", CertificateAuthority: write("ca.crt", "CA-PEM")}
	cfg.Clusters["c2"] = &clientcmdapi.Cluster{Server: "https://c2.example.com"}
	cfg.AuthInfos["u1"] = &clientcmdapi.AuthInfo{ClientCertificate: write("u.crt", "CERT-PEM"), ClientKey: write("u.key", "KEY-PEM")}
	cfg.AuthInfos["u2"] = &clientcmdapi.AuthInfo{TokenFile: write("token", "tok-123\n")}
	cfg.AuthInfos["exec"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}}
	cfg.AuthInfos["ap"] = &clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}
	cfg.Contexts["one"] = &clientcmdapi.Context{Cluster: "c1", AuthInfo: "u1", Namespace: "apps"}
	cfg.Contexts["two"] = &clientcmdapi.Context{Cluster: "c2", AuthInfo: "u2"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c2", AuthInfo: "exec"}
	cfg.Contexts["y"] = &clientcmdapi.Context{Cluster: "c2", AuthInfo: "ap"}

	data, host, dest, err := exportContext(cfg, "one", "")
	assert.NilError(t, err)
	assert.Equal(t, host, "c1.example.com")
	assert.Equal(t, dest, "https://c1.example.com:6443")
	got, err := clientcmd.Load(data)
	assert.NilError(t, err)
	assert.Equal(t, len(got.Contexts), 1)
	assert.Equal(t, len(got.Clusters), 1)
	assert.Equal(t, len(got.AuthInfos), 1)
	assert.Equal(t, got.CurrentContext, "one")
	c := got.Clusters[got.Contexts["one"].Cluster]
	u := got.AuthInfos[got.Contexts["one"].AuthInfo]
	assert.Equal(t, string(c.CertificateAuthorityData), "CA-PEM")
	assert.Equal(t, c.CertificateAuthority, "")
	assert.Equal(t, string(u.ClientCertificateData), "CERT-PEM")
	assert.Equal(t, string(u.ClientKeyData), "KEY-PEM")
	assert.Equal(t, u.ClientCertificate+u.ClientKey, "")
	assert.Assert(t, !strings.Contains(string(data), dir), "file paths left in:\n%s", data)

	// A token file is inlined; --server replaces the server.
	data, host, dest, err = exportContext(cfg, "two", "https://10.0.0.9:6443/")
	assert.NilError(t, err)
	assert.Equal(t, host, "10.0.0.9")
	assert.Equal(t, dest, "https://10.0.0.9:6443")
	got, err = clientcmd.Load(data)
	assert.NilError(t, err)
	assert.Equal(t, got.AuthInfos[got.Contexts["two"].AuthInfo].Token, "tok-123")
	assert.Equal(t, got.Clusters[got.Contexts["two"].Cluster].Server, "https://10.0.0.9:6443")

	_, _, _, err = exportContext(cfg, "x", "")
	assert.ErrorContains(t, err, "exec plugin \"aws\"")
	_, _, _, err = exportContext(cfg, "y", "")
	assert.ErrorContains(t, err, "\"oidc\" auth provider")
	_, _, _, err = exportContext(cfg, "nope", "")
	assert.ErrorContains(t, err, "contexts: one, two, x, y")
	_, _, _, err = exportContext(cfg, "one", "https://kubernetes.default.svc")
	assert.ErrorContains(t, err, "leave destination.server empty")
}

func TestOneLine(t *testing.T) {
	assert.Equal(t, oneLine("a\n  b\r\n\nc "), "a; b; c")
	assert.Equal(t, oneLine("plain"), "plain")
}

// TestConnectionFlags: kubectl's connection flags are accepted before and
// after every command, and reach the client configuration.
func TestConnectionFlags(t *testing.T) {
	flags := []string{"--as", "jane", "--as-group", "devs", "--as-uid", "42", "--user", "u", "--cluster", "c",
		"--server", "https://10.0.0.1:6443", "--token", "t0k", "--request-timeout", "7s", "--insecure-skip-tls-verify",
		"--context", "ctx", "--kubeconfig", "/dev/null", "--namespace", "ops"}
	for _, args := range [][]string{
		append(append([]string{}, flags...), "version"),
		append([]string{"version"}, flags...),
	} {
		a, _, errOut := testApp(nil)
		code := run(context.Background(), args, a)
		assert.Equal(t, code, exitOK, "%v: %s", args, errOut.String())
		o := a.kube.overrides
		assert.Equal(t, o.AuthInfo.Impersonate, "jane")
		assert.DeepEqual(t, o.AuthInfo.ImpersonateGroups, []string{"devs"})
		assert.Equal(t, o.AuthInfo.ImpersonateUID, "42")
		assert.Equal(t, o.Context.AuthInfo, "u")
		assert.Equal(t, o.Context.Cluster, "c")
		assert.Equal(t, o.ClusterInfo.Server, "https://10.0.0.1:6443")
		assert.Equal(t, o.AuthInfo.Token, "t0k")
		assert.Equal(t, o.Timeout, "7s")
		assert.Assert(t, o.ClusterInfo.InsecureSkipTLSVerify)
		assert.Equal(t, o.CurrentContext, "ctx")
		assert.Equal(t, a.kube.namespace(), "ops")
	}

	// With only --server and --token a client can be built, as with kubectl.
	a, _, _ := testApp(nil)
	assert.Equal(t, run(context.Background(), []string{"--server", "https://10.0.0.1:6443", "--token", "t0k", "--as", "jane", "--request-timeout", "7s", "version"}, a), exitOK)
	cfg, err := a.kube.restConfig()
	assert.NilError(t, err)
	assert.Equal(t, cfg.Host, "https://10.0.0.1:6443")
	assert.Equal(t, cfg.BearerToken, "t0k")
	assert.Equal(t, cfg.Impersonate.UserName, "jane")
	assert.Equal(t, cfg.Timeout, 7*time.Second)

	// The earlier flag name still works; the default is the operator's namespace.
	a, _, _ = testApp(nil)
	assert.Equal(t, run(context.Background(), []string{"version", "--operator-namespace", "legacy"}, a), exitOK)
	assert.Equal(t, a.kube.namespace(), "legacy")
	a, _, _ = testApp(nil)
	assert.Equal(t, run(context.Background(), []string{"version"}, a), exitOK)
	assert.Equal(t, a.kube.namespace(), defaultOperatorNamespace)
}

// TestExitCodes: 2 for a mistake on the command line, 1 when the command
// ran and failed, and for diff 3 when it could not tell.
func TestExitCodes(t *testing.T) {
	// Nothing listens on port 1: connection refused.
	unreachable := []string{"--server", "http://127.0.0.1:1", "--request-timeout", "5s"}
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"status", "--no-such-flag"}, exitUsage},
		{[]string{"status", "-o", "xml"}, exitUsage},
		{[]string{"-A", "status"}, exitUsage}, // -A is a status flag, not a global one
		{append([]string{"status", "-A"}, unreachable...), exitFailure},
		{append([]string{"status", "-o", "name"}, unreachable...), exitFailure},
		{append([]string{"suspend", "x"}, unreachable...), exitFailure},
		{append([]string{"reconcile", "x"}, unreachable...), exitFailure},
		{append([]string{"diff", "x"}, unreachable...), exitDiffError},
		{[]string{"diff"}, exitUsage},
	}
	for _, tc := range cases {
		a, out, errOut := testApp(nil)
		code := run(context.Background(), tc.args, a)
		assert.Equal(t, code, tc.code, "%v: %s", tc.args, errOut.String())
		assert.Equal(t, out.String(), "", "%v", tc.args)
		assert.Equal(t, strings.Count(errOut.String(), "\n"), 1, "%v: %q", tc.args, errOut.String())
		assert.Assert(t, strings.HasPrefix(errOut.String(), "error: "), "%v: %q", tc.args, errOut.String())
	}
}
