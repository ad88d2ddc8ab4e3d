package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vidra-operator/vidra/controllers/cluster"
)

const clusterUsage = `Write the kubeconfig Secret the operator uses to apply to another cluster.

The kubeconfig holds only the given context, its cluster and its user, with
every file it refers to (CA, client certificate and key, token file) inlined,
so it works inside the operator's pod. Users authenticating through an exec
or auth-provider plugin are refused: the operator cannot run the plugin.

The Secret goes to the operator's namespace under the key "kubeconfig", with
the label ` + cluster.LegacyKubeconfigLabel + `=<host of the server>, which is how the operator
finds it for an InfrahubSync whose spec.destination.server is that server.
The server to use is printed.

Usage:
  kubectl vidra cluster add <context> [--server URL] [--name N] [-n ns]

Flags --kubeconfig and --context select the cluster the Secret is written
to (where the operator runs); <context> is read from the same kubeconfig.

Examples:
  kubectl vidra cluster add prod-eu
  kubectl vidra cluster add kind-edge --server https://edge.internal:6443`

func runCluster(ctx context.Context, a *app, args []string) error {
	args, err := onlySubcommand("cluster", "add", args)
	if err != nil {
		return err
	}
	f := a.newFlags("cluster add", clusterUsage)
	name := f.String("name", "", "name of the Secret (default cluster-kubeconfig-<context>)")
	server := f.String("server", "", "API server URL the operator reaches the cluster at, when it differs from the kubeconfig's")
	overwrite := f.Bool("overwrite", false, "replace an existing Secret of that name")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	ns := a.kube.namespace()
	if len(pos) != 1 {
		return usagef("cluster", "cluster add needs exactly one kubeconfig context name")
	}
	contextName := pos[0]
	if *name == "" {
		*name = objectName("cluster-kubeconfig-", contextName)
	} else if err := validSecretName(*name); err != nil {
		return usagef("cluster", "%v", err)
	}
	raw, err := a.kube.loader().RawConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	data, host, dest, err := exportContext(&raw, contextName, *server)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		fmt.Fprintf(a.stderr, "warning: %s is a loopback address; unless the operator runs on this machine, pass --server with an address it can reach\n", dest)
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	label := cluster.LabelValueForHost(host)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      *name,
			Namespace: ns,
			Labels: map[string]string{
				cluster.LegacyKubeconfigLabel: label,
				labelManagedBy:                pluginName,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{cluster.DefaultKubeconfigKey: data},
	}
	verb, err := writeSecret(ctx, c.kube, secret, *overwrite)
	if err != nil {
		return err
	}
	// The operator takes the newest Secret with the label; others are
	// shadowed, which is worth knowing.
	others, err := c.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: cluster.LegacyKubeconfigLabel + "=" + label})
	if err == nil {
		var names []string
		for _, s := range others.Items {
			if s.Name != *name {
				names = append(names, s.Name)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			fmt.Fprintf(a.stderr, "warning: other Secrets in %s carry %s=%s too (%s); the operator uses the newest one holding a context for the server\n",
				ns, cluster.LegacyKubeconfigLabel, label, strings.Join(names, ", "))
		}
	}
	fmt.Fprintf(a.stdout, "Secret %s/%s %s (context %s, server %s).\n", ns, *name, verb, contextName, dest)
	fmt.Fprintf(a.stdout, "Use it from an InfrahubSync:\n\n  spec:\n    destination:\n      server: %s\n", dest)
	return nil
}

// exportContext returns a self-contained kubeconfig holding only one
// context, its cluster and its user, with file references inlined, and the
// host and URL of its server (server, when given, replaces the cluster's).
func exportContext(raw *clientcmdapi.Config, contextName, server string) ([]byte, string, string, error) {
	kctx, ok := raw.Contexts[contextName]
	if !ok {
		var names []string
		for n := range raw.Contexts {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, "", "", fmt.Errorf("context %q not found: the kubeconfig has no contexts", contextName)
		}
		return nil, "", "", fmt.Errorf("context %q not found in the kubeconfig (contexts: %s)", contextName, strings.Join(names, ", "))
	}
	cl, ok := raw.Clusters[kctx.Cluster]
	if !ok {
		return nil, "", "", fmt.Errorf("context %q names cluster %q, which the kubeconfig does not define", contextName, kctx.Cluster)
	}
	user, ok := raw.AuthInfos[kctx.AuthInfo]
	if !ok {
		return nil, "", "", fmt.Errorf("context %q names user %q, which the kubeconfig does not define", contextName, kctx.AuthInfo)
	}
	switch {
	case user.Exec != nil:
		return nil, "", "", fmt.Errorf("user %q of context %q authenticates with the exec plugin %q, which the operator cannot run; use a user with a token or client certificate (for example a ServiceAccount token)",
			kctx.AuthInfo, contextName, user.Exec.Command)
	case user.AuthProvider != nil:
		return nil, "", "", fmt.Errorf("user %q of context %q authenticates with the %q auth provider, which the operator cannot run; use a user with a token or client certificate",
			kctx.AuthInfo, contextName, user.AuthProvider.Name)
	}

	out := clientcmdapi.NewConfig()
	c := cl.DeepCopy()
	u := user.DeepCopy()
	x := kctx.DeepCopy()
	c.LocationOfOrigin, u.LocationOfOrigin, x.LocationOfOrigin = "", "", ""
	c.Extensions, u.Extensions, x.Extensions = nil, nil, nil
	if server != "" {
		c.Server = server
	}
	dest, host, err := serverURL(c.Server)
	if err != nil {
		return nil, "", "", fmt.Errorf("cluster %q: %w", kctx.Cluster, err)
	}
	c.Server = dest
	if u.TokenFile != "" {
		token, err := os.ReadFile(u.TokenFile)
		if err != nil {
			return nil, "", "", fmt.Errorf("user %q: read token file: %w", kctx.AuthInfo, err)
		}
		u.Token, u.TokenFile = strings.TrimSpace(string(token)), ""
	}
	x.Cluster, x.AuthInfo = contextName, contextName
	out.Clusters[contextName] = c
	out.AuthInfos[contextName] = u
	out.Contexts[contextName] = x
	out.CurrentContext = contextName
	// Paths were made absolute by the loader; read them into the file.
	if err := clientcmdapi.FlattenConfig(out); err != nil {
		return nil, "", "", fmt.Errorf("inline the files of context %q: %w", contextName, err)
	}
	if err := clientcmdapi.MinifyConfig(out); err != nil {
		return nil, "", "", fmt.Errorf("context %q: %w", contextName, err)
	}
	if u.Token == "" && len(u.ClientCertificateData) == 0 && u.Username == "" {
		return nil, "", "", fmt.Errorf("user %q of context %q has no token, client certificate or basic auth to give the operator", kctx.AuthInfo, contextName)
	}
	data, err := clientcmd.Write(*out)
	if err != nil {
		return nil, "", "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return data, host, dest, nil
}

// serverURL checks an API server URL and returns it and its host.
func serverURL(raw string) (string, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return "", "", fmt.Errorf("server %q is not an http(s) URL with a host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("server %q must not hold credentials, a query or a fragment", raw)
	}
	if cluster.IsLocal(u.String()) {
		return "", "", fmt.Errorf("server %s means the operator's own cluster; leave destination.server empty instead", u.String())
	}
	return strings.TrimRight(u.String(), "/"), strings.ToLower(u.Hostname()), nil
}

// onlySubcommand checks that args start with sub, the command's one
// subcommand (help flags ask for its help), and returns the arguments after
// it.
func onlySubcommand(command, sub string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, usagef(command, "%s needs a subcommand: %s", command, sub)
	}
	switch args[0] {
	case "-h", "--help", "help":
		return []string{"--help"}, nil
	case sub:
		return args[1:], nil
	}
	return nil, usagef(command, "unknown %s subcommand %q (only %s exists)", command, args[0], sub)
}
