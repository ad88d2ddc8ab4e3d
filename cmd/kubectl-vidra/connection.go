package main

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/infrahub"
)

// secretReader reads Secrets of the operator's namespace straight from the
// API, as the operator's lister would, for the Secrets diff needs. It
// implements corelisters.SecretNamespaceLister for the cluster manager.
type secretReader struct {
	ctx       context.Context
	kube      kubernetes.Interface
	namespace string
}

func (r *secretReader) List(selector labels.Selector) ([]*corev1.Secret, error) {
	list, err := r.kube.CoreV1().Secrets(r.namespace).List(r.ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Secret, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

func (r *secretReader) Get(name string) (*corev1.Secret, error) {
	return r.kube.CoreV1().Secrets(r.namespace).Get(r.ctx, name, metav1.GetOptions{})
}

// infrahubConfig builds the connection the operator would use for a sync:
// URL, TLS settings and credentials from Secrets in the operator's
// namespace (the referenced Secret, else the newest username/password
// Secret labelled with Infrahub's host, else anonymous).
func infrahubConfig(sync *v1alpha1.InfrahubSync, secrets *secretReader, queryName string) (infrahub.Config, error) {
	src := sync.Spec.Source
	cfg := infrahub.Config{
		BaseURL:            src.InfrahubAPIURL,
		InsecureSkipVerify: src.InsecureSkipTLSVerify,
		QueryName:          src.QueryName,
		Timeout:            30 * time.Second,
		UserAgent:          "kubectl-vidra/" + version(),
	}
	if cfg.QueryName == "" {
		cfg.QueryName = queryName
	}
	ns := secrets.namespace
	read := func(name, what string) (*corev1.Secret, error) {
		s, err := secrets.Get(name)
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%s: Secret %s/%s not found (is the operator's namespace %s? set --operator-namespace)", what, ns, name, ns)
		case err != nil:
			return nil, fmt.Errorf("%s: read Secret %s/%s: %s", what, ns, name, secretSafeError(err))
		}
		return s, nil
	}
	if ref := src.CABundleSecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = "ca.crt"
		}
		s, err := read(ref.Name, "CA bundle")
		if err != nil {
			return cfg, err
		}
		if len(s.Data[key]) == 0 {
			return cfg, fmt.Errorf("CA bundle: Secret %s/%s has no key %q", ns, ref.Name, key)
		}
		cfg.CABundle = s.Data[key]
	}
	if ref := src.CredentialsSecretRef; ref != nil {
		s, err := read(ref.Name, "credentials")
		if err != nil {
			return cfg, err
		}
		return withCredentials(cfg, s, fmt.Sprintf("Secret %s/%s", ns, ref.Name))
	}
	host := hostOf(src.InfrahubAPIURL)
	if host == "" {
		return cfg, nil
	}
	selector := labels.SelectorFromSet(labels.Set{infrahubsync.LegacyCredentialsLabel: cluster.LabelValueForHost(host)})
	list, err := secrets.List(selector)
	if err != nil {
		return cfg, fmt.Errorf("credentials: list Secrets in %s: %s", ns, secretSafeError(err))
	}
	sort.Slice(list, func(i, j int) bool {
		ti, tj := list[i].CreationTimestamp, list[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return list[i].Name < list[j].Name
	})
	for _, s := range list {
		if len(s.Data["username"]) > 0 && len(s.Data["password"]) > 0 {
			return withCredentials(cfg, s, fmt.Sprintf("Secret %s/%s", ns, s.Name))
		}
	}
	return cfg, nil
}

// withCredentials takes "token", else "username" and "password", trimmed.
// Values never appear in errors.
func withCredentials(cfg infrahub.Config, s *corev1.Secret, where string) (infrahub.Config, error) {
	if token := strings.TrimSpace(string(s.Data["token"])); token != "" {
		cfg.APIToken = token
		return cfg, nil
	}
	user, pass := strings.TrimSpace(string(s.Data["username"])), strings.TrimSpace(string(s.Data["password"]))
	if user == "" || pass == "" {
		return cfg, fmt.Errorf("%s holds neither %q nor both %q and %q", where, "token", "username", "password")
	}
	cfg.Username, cfg.Password = user, pass
	return cfg, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
