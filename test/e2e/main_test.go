// Package e2e tests the real operator binary, built by TestMain with the
// flags of `make build`, as a separate process against a real control plane
// and the fake Infrahub. The operator runs as the vidra-operator
// ServiceAccount with the RBAC of manifests/operator, so those grants are
// tested too. It also runs `make demo` non-interactively.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vidra-operator/vidra/test/controlplane"
)

const (
	operatorNamespace = "vidra-system"
	serviceAccount    = "vidra-operator"
	leaseName         = "vidra-operator" // the name the manifests' Role allows
)

var (
	cp       *controlplane.ControlPlane
	repoRoot string
	// operatorBin is the binary under test.
	operatorBin string
	// saKubeconfig authenticates as the operator's ServiceAccount.
	saKubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = controlplane.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "vidra-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	operatorBin = filepath.Join(dir, "vidra-operator")
	// The same build as `make build`.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=e2e", "-o", operatorBin, "./cmd/vidra-operator")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}

	workDir = dir
	return controlplane.RunMain(m, controlplane.Config{
		Name:     "e2e",
		CRDPaths: []string{filepath.Join(repoRoot, "manifests", "crds")},
	}, &cp)
}

var (
	workDir   string
	rbacOnce  sync.Once
	rbacError error
)

// needRBAC installs the operator's ServiceAccount and RBAC (once) and fails
// the test if that failed.
func needRBAC(t *testing.T) {
	t.Helper()
	rbacOnce.Do(func() { rbacError = installRBAC(workDir) })
	if rbacError != nil {
		t.Fatalf("installing the operator's RBAC: %v", rbacError)
	}
}

func installRBAC(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files := []string{"00-namespace.yaml", "10-serviceaccount.yaml", "20-rbac.yaml", "21-rbac-manage.yaml"}
	args := []string{"apply", "--server-side", "--field-manager=e2e"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join(repoRoot, "manifests", "operator", f))
	}
	if _, _, err := cp.Kubectl(ctx, args...); err != nil {
		return err
	}
	admin, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return err
	}
	expiry := int64(3 * 3600)
	tr, err := admin.CoreV1().ServiceAccounts(operatorNamespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for the ServiceAccount: %w", err)
	}
	cfg := cp.RESTConfig()
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["vidra-operator"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "vidra-operator"}
	kc.CurrentContext = "e2e"
	saKubeconfig = filepath.Join(dir, "operator.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, saKubeconfig); err != nil {
		return err
	}
	// Fail early and clearly if the token does not work.
	if _, stderr, err := cp.Kubectl(ctx, "--kubeconfig", saKubeconfig, "auth", "can-i", "list", "vidraresources.infrahub.operators.com"); err != nil {
		return fmt.Errorf("the ServiceAccount token: %v: %s", err, bytes.TrimSpace(stderr))
	}
	return nil
}
