package gitsync

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
)

// Secret keys a GitSync's credentials Secret may hold.
const (
	KeyToken      = "token"
	KeyUsername   = "username"
	KeyPassword   = "password"
	KeyIdentity   = "identity"
	KeyKnownHosts = "known_hosts"
)

// isSSH reports whether url is an SSH remote: ssh:// or the short form
// user@host:path.
func isSSH(url string) bool {
	if strings.HasPrefix(url, "ssh://") {
		return true
	}
	return !strings.Contains(url, "://") && strings.Contains(url, "@") && strings.Contains(url, ":")
}

// auth reads a sync's credentials from its Secret in the operator's
// namespace. An SSH remote needs a key and known_hosts: host keys are
// always checked. Errors name the Secret and its keys, never a value.
func (c *Controller) auth(gs *v1alpha1.GitSync) (gitrepo.Auth, error) {
	ssh := isSSH(gs.Spec.URL)
	ref := gs.Spec.SecretRef
	if ref == nil {
		if ssh {
			return gitrepo.Auth{}, fmt.Errorf("an SSH URL needs spec.secretRef naming a Secret in %s with %q and %q", c.opts.Namespace, KeyIdentity, KeyKnownHosts)
		}
		return gitrepo.Auth{}, nil
	}
	where := fmt.Sprintf("Secret %s/%s", c.opts.Namespace, ref.Name)
	if c.secrets == nil {
		return gitrepo.Auth{}, fmt.Errorf("credentials: %s: the operator reads no Secrets", where)
	}
	s, err := c.secrets.Get(ref.Name)
	switch {
	case apierrors.IsNotFound(err):
		return gitrepo.Auth{}, fmt.Errorf("credentials: %s not found", where)
	case err != nil:
		return gitrepo.Auth{}, fmt.Errorf("credentials: read %s failed", where)
	}
	if ssh {
		key, hosts := s.Data[KeyIdentity], s.Data[KeyKnownHosts]
		switch {
		case len(key) == 0:
			return gitrepo.Auth{}, fmt.Errorf("credentials: %s has no %q (the SSH private key)", where, KeyIdentity)
		case len(strings.TrimSpace(string(hosts))) == 0:
			return gitrepo.Auth{}, fmt.Errorf("credentials: %s has no %q; SSH host keys are always checked", where, KeyKnownHosts)
		}
		return gitrepo.Auth{Username: strings.TrimSpace(string(s.Data[KeyUsername])), SSHPrivateKey: key, SSHKnownHosts: hosts}, nil
	}
	user := strings.TrimSpace(string(s.Data[KeyUsername]))
	if token := strings.TrimSpace(string(s.Data[KeyToken])); token != "" {
		if user == "" {
			user = "git"
		}
		return gitrepo.Auth{Username: user, Password: token}, nil
	}
	pass := strings.TrimSpace(string(s.Data[KeyPassword]))
	if user == "" || pass == "" {
		return gitrepo.Auth{}, fmt.Errorf("credentials: %s holds neither %q nor both %q and %q", where, KeyToken, KeyUsername, KeyPassword)
	}
	return gitrepo.Auth{Username: user, Password: pass}, nil
}
