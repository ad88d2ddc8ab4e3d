package cluster

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestIsLocal(t *testing.T) {
	for _, s := range []string{"", " ", "https://kubernetes.default.svc", "https://kubernetes.default.svc/", "https://kubernetes.default.svc:443"} {
		assert.Assert(t, IsLocal(s), s)
	}
	for _, s := range []string{"https://kubernetes.default.svc.cluster.local", "https://10.0.0.1:6443", "http://kubernetes.default.svc"} {
		assert.Assert(t, !IsLocal(s), s)
	}
}

func TestNormalizeServer(t *testing.T) {
	cases := map[string]string{
		"https://K8s.Example.com":        "https://k8s.example.com:443",
		"https://k8s.example.com:443/":   "https://k8s.example.com:443",
		"https://10.0.0.1:6443":          "https://10.0.0.1:6443",
		"https://[fd00::1]:6443":         "https://[fd00::1]:6443",
		"https://[FD00::1]":              "https://[fd00::1]:443",
		"http://proxy.example.com/k8s/":  "http://proxy.example.com:80/k8s",
		"https://kubernetes.default.svc": "",
	}
	for in, want := range cases {
		assert.Equal(t, NormalizeServer(in), want, in)
	}
	// No substring matching: 10.0.0.1 and 10.0.0.10 are different servers.
	assert.Assert(t, NormalizeServer("https://10.0.0.1:6443") != NormalizeServer("https://10.0.0.10:6443"))
}

func TestLabelValueForHost(t *testing.T) {
	assert.Equal(t, LabelValueForHost("k8s.example.com"), "k8s.example.com")
	assert.Equal(t, LabelValueForHost("10.0.0.1"), "10.0.0.1")
	assert.Equal(t, LabelValueForHost("fd00::1"), "fd00--1")
}

func kubeconfig(t *testing.T, current string, servers map[string]string) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for name, server := range servers {
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "secret-token-" + name}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	cfg.CurrentContext = current
	data, err := clientcmd.Write(*cfg)
	assert.NilError(t, err)
	return data
}

func TestRestConfigFromKubeconfig(t *testing.T) {
	data := kubeconfig(t, "a", map[string]string{"a": "https://10.0.0.1:6443", "b": "https://10.0.0.10:6443"})

	// Found by label: the context whose server is exactly the destination.
	cfg, err := restConfigFromKubeconfig(data, "https://10.0.0.10:6443", false)
	assert.NilError(t, err)
	assert.Equal(t, cfg.Host, "https://10.0.0.10:6443")
	assert.Equal(t, cfg.BearerToken, "secret-token-b")

	_, err = restConfigFromKubeconfig(data, "https://10.0.0.2:6443", false)
	assert.ErrorContains(t, err, "no context for server")

	// An explicit reference uses the current context as it is.
	cfg, err = restConfigFromKubeconfig(data, "https://anything.example.com", true)
	assert.NilError(t, err)
	assert.Equal(t, cfg.Host, "https://10.0.0.1:6443")

	// Garbage never shows up in the error.
	_, err = restConfigFromKubeconfig([]byte("token: hunter2\n: : :"), "https://10.0.0.1:6443", true)
	assert.Assert(t, err != nil)
	assert.Assert(t, !strings.Contains(err.Error(), "hunter2"), err.Error())
}

func TestExecPluginsAreRefused(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	data, err := clientcmd.Write(*cfg)
	assert.NilError(t, err)
	_, err = restConfigFromKubeconfig(data, "https://10.0.0.1:6443", true)
	assert.ErrorContains(t, err, "self-contained")
}
