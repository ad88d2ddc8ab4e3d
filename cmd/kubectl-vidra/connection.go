package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
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

// infrahubConfig builds the connection the operator would use for a sync,
// the way the operator does: URL, TLS settings and credentials from Secrets
// in the operator's namespace.
func infrahubConfig(sync *v1alpha1.InfrahubSync, secrets *secretReader, queryName string) (infrahub.Config, error) {
	base := infrahub.Config{
		QueryName: queryName,
		Timeout:   30 * time.Second,
		UserAgent: "kubectl-vidra/" + version(),
	}
	cfg, err := infrahubsync.ResolveConnection(base, sync.Spec.Source, secrets.namespace, secrets)
	if infrahubsync.IsSecretNotFound(err) {
		err = fmt.Errorf("%w (is the operator's namespace %s? set --operator-namespace)", err, secrets.namespace)
	}
	return cfg, err
}
