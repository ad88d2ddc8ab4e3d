package manifest

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Key identifies an object independently of its API version, so changing
// only a manifest's apiVersion (Ingress v1beta1 to v1) names the same object
// rather than a new one plus a removed one.
type Key struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// String reads like kubectl's resource names: "Deployment.apps web/shop",
// "Service web/shop", "Namespace web".
func (k Key) String() string {
	var b strings.Builder
	b.WriteString(k.Kind)
	if k.Group != "" {
		b.WriteByte('.')
		b.WriteString(k.Group)
	}
	b.WriteByte(' ')
	if k.Namespace != "" {
		b.WriteString(k.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(k.Name)
	return b.String()
}

// GroupKind is the key's group and kind.
func (k Key) GroupKind() schema.GroupKind { return schema.GroupKind{Group: k.Group, Kind: k.Kind} }

// KeyOf returns the identity of u. The group is whatever comes before the
// "/" of apiVersion; Parse has checked that apiVersion is well formed.
func KeyOf(u *unstructured.Unstructured) Key {
	if u == nil {
		return Key{}
	}
	group, _, found := strings.Cut(u.GetAPIVersion(), "/")
	if !found {
		group = ""
	}
	return Key{Group: group, Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Duplicates reports every object declared more than once, naming both
// documents. Call it after namespaces are defaulted: "shop" with no
// namespace and "shop" in the default namespace are the same object.
func Duplicates(docs []Document) error {
	first := make(map[Key]Document, len(docs))
	var errs []error
	for _, d := range docs {
		k := d.Key()
		if prev, ok := first[k]; ok {
			errs = append(errs, &ParseError{
				Document: d.Index,
				Item:     d.Item,
				Line:     d.Line,
				Msg:      fmt.Sprintf("%s is already declared by %s", k, prev.Position()),
			})
			continue
		}
		first[k] = d
	}
	return errors.Join(errs...)
}

// SecretSafe describes an object for logs and events by its identity alone,
// e.g. "Secret web/creds". Use it rather than printing an object, which
// could be a Secret.
func SecretSafe(u *unstructured.Unstructured) string {
	if u == nil {
		return "<nil>"
	}
	return KeyOf(u).String()
}
