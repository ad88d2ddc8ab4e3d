package infrahubsync

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/infrahub"
)

// SecretGetter reads the Secrets of the operator's namespace: the
// operator's lister (corelisters.SecretNamespaceLister) or kubectl-vidra's
// direct reads.
type SecretGetter interface {
	Get(name string) (*corev1.Secret, error)
	List(selector labels.Selector) ([]*corev1.Secret, error)
}

// SecretNotFoundError says a Secret a sync names does not exist.
type SecretNotFoundError struct{ Namespace, Name string }

func (e *SecretNotFoundError) Error() string {
	return fmt.Sprintf("Secret %s/%s not found", e.Namespace, e.Name)
}

// ResolveConnection completes base (the caller's own settings: timeout,
// user agent, default query, trusted CAs) with a sync's source: URL, TLS
// switch, query, CA bundle and credentials. Secrets are read from namespace
// only: the Secret the sync names, else the newest username/password Secret
// labelled with Infrahub's exact host (the earlier operator's scheme), else
// none. secrets may be nil when no Secret can be read. Errors never hold a
// secret value.
func ResolveConnection(base infrahub.Config, src v1alpha1.InfrahubSource, namespace string, secrets SecretGetter) (infrahub.Config, error) {
	cfg := base
	cfg.BaseURL = src.InfrahubAPIURL
	cfg.InsecureSkipVerify = src.InsecureSkipTLSVerify
	if src.QueryName != "" {
		cfg.QueryName = src.QueryName
	}
	read := func(name, what string) (*corev1.Secret, error) {
		if secrets == nil {
			return nil, fmt.Errorf("%s: Secret %s: the operator reads no Secrets", what, name)
		}
		s, err := secrets.Get(name)
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%s: %w", what, &SecretNotFoundError{namespace, name})
		case err != nil:
			return nil, fmt.Errorf("%s: read Secret %s/%s: %s", what, namespace, name, statusText(err))
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
			return cfg, fmt.Errorf("CA bundle: Secret %s/%s has no key %q", namespace, ref.Name, key)
		}
		cfg.CABundle = append(append([]byte{}, base.CABundle...), s.Data[key]...)
	}
	if ref := src.CredentialsSecretRef; ref != nil {
		s, err := read(ref.Name, "credentials")
		if err != nil {
			return cfg, err
		}
		return withCredentials(cfg, s, fmt.Sprintf("Secret %s/%s", namespace, ref.Name))
	}
	host := hostOf(src.InfrahubAPIURL)
	if secrets == nil || host == "" {
		return cfg, nil
	}
	list, err := secrets.List(labels.SelectorFromSet(labels.Set{LegacyCredentialsLabel: cluster.LabelValueForHost(host)}))
	if err != nil {
		return cfg, fmt.Errorf("credentials: list Secrets in %s: %s", namespace, statusText(err))
	}
	for _, s := range cluster.NewestFirst(list) {
		if len(s.Data["username"]) > 0 && len(s.Data["password"]) > 0 {
			return withCredentials(cfg, s, fmt.Sprintf("Secret %s/%s", namespace, s.Name))
		}
	}
	return cfg, nil
}

// IsSecretNotFound reports whether err is a SecretNotFoundError.
func IsSecretNotFound(err error) bool {
	var nf *SecretNotFoundError
	return errors.As(err, &nf)
}

// statusText keeps an API error's status message, which names the object
// and the reason and never carries its data.
func statusText(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// withCredentials reads "token", or "username" and "password", from a
// Secret. Values are trimmed, as the earlier operator did; they never appear
// in errors.
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
