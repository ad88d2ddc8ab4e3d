package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// Labels put on the Secrets this plugin writes, besides the ones the
// operator reads.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	pluginName     = "kubectl-vidra"
)

// writeSecret creates the Secret, or replaces an existing one when
// overwrite is set. Messages name the Secret, never its contents.
func writeSecret(ctx context.Context, kube kubernetes.Interface, s *corev1.Secret, overwrite bool) (string, error) {
	secrets := kube.CoreV1().Secrets(s.Namespace)
	_, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: pluginName})
	if err == nil {
		return "created", nil
	}
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("namespace %s not found: is the operator installed there? (set it with -n)", s.Namespace)
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create Secret %s/%s: %s", s.Namespace, s.Name, secretSafeError(err))
	}
	if !overwrite {
		return "", fmt.Errorf("Secret %s/%s already exists; pass --overwrite to replace it, or choose another --name", s.Namespace, s.Name)
	}
	old, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read Secret %s/%s: %s", s.Namespace, s.Name, secretSafeError(err))
	}
	s.ResourceVersion = old.ResourceVersion
	if old.Type != s.Type {
		return "", fmt.Errorf("Secret %s/%s has type %s, not %s; delete it first or choose another --name", s.Namespace, s.Name, old.Type, s.Type)
	}
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: pluginName}); err != nil {
		return "", fmt.Errorf("update Secret %s/%s: %s", s.Namespace, s.Name, secretSafeError(err))
	}
	return "replaced", nil
}

// secretSafeError keeps an API error's status text, which names the object
// and the reason but never carries the data sent.
func secretSafeError(err error) string {
	if status, ok := err.(apierrors.APIStatus); ok {
		return status.Status().Message
	}
	return err.Error()
}

// readValueFile reads a secret value from a file, or from stdin for "-",
// without its trailing newline. Errors never quote the content.
func readValueFile(a *app, path, what string) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(a.stdin, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	v := strings.TrimRight(string(data), "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%s file %s holds more than one line", what, path)
	}
	return v, nil
}

// objectName turns free text (a host, a context name) into a valid Secret
// name with a prefix; text that had to be altered gets a short hash so two
// inputs never share a name.
func objectName(prefix, text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	clean := strings.Trim(b.String(), "-.")
	name := prefix + clean
	if clean == "" || clean != text || len(name) > 200 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		sum := sha256.Sum256([]byte(text))
		if len(name) > 200 {
			name = strings.Trim(name[:200], "-.")
		}
		name = strings.TrimRight(name, "-.") + "-" + hex.EncodeToString(sum[:])[:8]
	}
	return name
}

func validSecretName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("--name %q is not a valid Secret name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}
