package infrahubsync

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/infrahub"
)

func TestResolveConnection(t *testing.T) {
	const ns = "vidra-system"
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	secret := func(name string, created time.Time, labels map[string]string, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, CreationTimestamp: metav1.NewTime(created)}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	legacy := map[string]string{LegacyCredentialsLabel: cluster.LabelValueForHost("infrahub.example")}
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	indexer := factory.Core().V1().Secrets().Informer().GetIndexer()
	for _, s := range []*corev1.Secret{
		secret("token", t0, nil, map[string]string{"token": " tok \n", "username": "u", "password": "p"}),
		secret("ca", t0, nil, map[string]string{"ca.crt": "SECRET-CA"}),
		secret("half", t0, nil, map[string]string{"username": "only-user"}),
		secret("legacy-old", t0, legacy, map[string]string{"username": "old", "password": "old-pass"}),
		secret("legacy-new", t0.Add(time.Hour), legacy, map[string]string{"username": " new ", "password": "new-pass"}),
		secret("legacy-newest-incomplete", t0.Add(2*time.Hour), legacy, map[string]string{"username": "x"}),
	} {
		assert.NilError(t, indexer.Add(s))
	}
	secrets := factory.Core().V1().Secrets().Lister().Secrets(ns)
	base := infrahub.Config{QueryName: "Default", CABundle: []byte("OPERATOR-CA"), UserAgent: "test"}
	src := func(url string) v1alpha1.InfrahubSource {
		return v1alpha1.InfrahubSource{InfrahubAPIURL: url, ArtifactName: "A"}
	}

	t.Run("referenced token Secret and CA bundle", func(t *testing.T) {
		s := src("https://other.example")
		s.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: "token"}
		s.CABundleSecretRef = &v1alpha1.SecretKeyReference{Name: "ca"}
		s.QueryName = "Mine"
		cfg, err := ResolveConnection(base, s, ns, secrets)
		assert.NilError(t, err)
		assert.Equal(t, cfg.APIToken, "tok")
		assert.Equal(t, cfg.Username, "")
		assert.Equal(t, cfg.QueryName, "Mine")
		assert.Equal(t, string(cfg.CABundle), "OPERATOR-CASECRET-CA")
		assert.Equal(t, string(base.CABundle), "OPERATOR-CA", "the caller's bundle was changed")
	})
	t.Run("newest complete legacy Secret of the exact host", func(t *testing.T) {
		cfg, err := ResolveConnection(base, src("https://Infrahub.example:8443/api"), ns, secrets)
		assert.NilError(t, err)
		assert.Equal(t, cfg.Username, "new")
		assert.Equal(t, cfg.Password, "new-pass")
		assert.Equal(t, cfg.QueryName, "Default")
		cfg, err = ResolveConnection(base, src("https://infrahub.example.org"), ns, secrets)
		assert.NilError(t, err)
		assert.Equal(t, cfg.Username, "", "another host's Secret was used")
	})
	t.Run("errors name the Secret, never a value", func(t *testing.T) {
		s := src("https://x.example")
		s.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: "missing"}
		_, err := ResolveConnection(base, s, ns, secrets)
		assert.Assert(t, IsSecretNotFound(err))
		assert.Error(t, err, "credentials: Secret vidra-system/missing not found")

		s.CredentialsSecretRef.Name = "half"
		_, err = ResolveConnection(base, s, ns, secrets)
		assert.ErrorContains(t, err, "Secret vidra-system/half holds neither")
		assert.Assert(t, !strings.Contains(err.Error(), "only-user"))

		s.CredentialsSecretRef = nil
		s.CABundleSecretRef = &v1alpha1.SecretKeyReference{Name: "ca", Key: "other.crt"}
		_, err = ResolveConnection(base, s, ns, secrets)
		assert.Error(t, err, `CA bundle: Secret vidra-system/ca has no key "other.crt"`)
	})
	t.Run("no Secrets readable", func(t *testing.T) {
		cfg, err := ResolveConnection(base, src("https://infrahub.example"), ns, nil)
		assert.NilError(t, err)
		assert.Equal(t, cfg.Username, "")
		s := src("https://infrahub.example")
		s.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: "token"}
		_, err = ResolveConnection(base, s, ns, nil)
		assert.ErrorContains(t, err, fmt.Sprintf("Secret %s: the operator reads no Secrets", "token"))
	})
}
