package main

import (
	"flag"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vidra-operator/vidra/generated/clientset/versioned"
)

// defaultOperatorNamespace is where the operator runs and reads Secrets.
const defaultOperatorNamespace = "vidra-system"

// kubeFlags select the cluster, as kubectl does.
type kubeFlags struct {
	kubeconfig     string
	context        string
	requestTimeout time.Duration
}

// register adds the flags to fs. They may be given before the command (on
// the root FlagSet) or after it; registering with the current values as
// defaults keeps what the root FlagSet parsed.
func (k *kubeFlags) register(fs *flag.FlagSet) {
	if k.requestTimeout == 0 {
		k.requestTimeout = 30 * time.Second
	}
	fs.StringVar(&k.kubeconfig, "kubeconfig", k.kubeconfig, "path to the kubeconfig file")
	fs.StringVar(&k.context, "context", k.context, "name of the kubeconfig context to use")
	fs.DurationVar(&k.requestTimeout, "request-timeout", k.requestTimeout, "timeout of each API request")
}

// loader returns the client configuration as kubectl would load it:
// --kubeconfig, else $KUBECONFIG (a path list), else ~/.kube/config.
func (k *kubeFlags) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

func (k *kubeFlags) restConfig() (*rest.Config, error) {
	cfg, err := k.loader().ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no kubeconfig found: set --kubeconfig or $KUBECONFIG")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = k.requestTimeout
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
