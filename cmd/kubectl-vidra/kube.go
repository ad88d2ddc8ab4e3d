package main

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vidra-operator/vidra/generated/clientset/versioned"
)

// defaultOperatorNamespace is where the operator runs and reads Secrets.
const defaultOperatorNamespace = "vidra-system"

// defaultRequestTimeout bounds each API request unless --request-timeout
// says otherwise.
const defaultRequestTimeout = "30s"

// kubeFlags select the cluster, as kubectl does: --kubeconfig and client-go's
// override flags (--context, --cluster, --user, --server, --token, --as,
// --as-group, --as-uid, --request-timeout, -n/--namespace, ...).
type kubeFlags struct {
	rules     clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides
	fs        *pflag.FlagSet
}

// flagSet returns the connection flags, created once: the root and every
// command share the same flags, so a flag given before the command keeps
// its value.
func (k *kubeFlags) flagSet() *pflag.FlagSet {
	if k.fs != nil {
		return k.fs
	}
	fs := pflag.NewFlagSet("connection", pflag.ContinueOnError)
	fs.StringVar(&k.rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.Timeout.Default = defaultRequestTimeout
	names.ContextOverrideFlags.Namespace.Description = "the operator's namespace, where it runs and reads its Secrets (default " + defaultOperatorNamespace + "; InfrahubSyncs and VidraResources are cluster-scoped)"
	clientcmd.BindOverrideFlags(&k.overrides, fs, names)
	k.fs = fs
	return fs
}

// namespace is the operator's namespace: -n/--namespace, else vidra-system.
// The kubeconfig context's namespace is not used: Vidra's Secrets live with
// the operator, not where a user happens to work.
func (k *kubeFlags) namespace() string {
	if k.overrides.Context.Namespace != "" {
		return k.overrides.Context.Namespace
	}
	return defaultOperatorNamespace
}

// loader returns the client configuration as kubectl would load it:
// --kubeconfig, else $KUBECONFIG (a path list), else ~/.kube/config, with
// the override flags applied.
func (k *kubeFlags) loader() clientcmd.ClientConfig {
	k.flagSet()
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.rules.ExplicitPath
	overrides := k.overrides
	if overrides.Timeout == "" {
		overrides.Timeout = defaultRequestTimeout
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &overrides)
}

func (k *kubeFlags) restConfig() (*rest.Config, error) {
	cfg, err := k.loader().ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no kubeconfig found: set --kubeconfig or $KUBECONFIG, or give --server")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "kubectl-vidra/" + version() + " " + rest.DefaultKubernetesUserAgent()
	return cfg, nil
}

// clients are the API clients of the cluster the operator runs in.
type clients struct {
	config  *rest.Config
	vidra   versioned.Interface
	kube    kubernetes.Interface
	dynamic dynamic.Interface
}

func (a *app) clients() (*clients, error) {
	cfg, err := a.kube.restConfig()
	if err != nil {
		return nil, err
	}
	c := &clients{config: cfg}
	if c.vidra, err = versioned.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("vidra client: %w", err)
	}
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return c, nil
}
