// Command vidra-controlplane starts a local Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager) for humans and demos, prints how to
// reach it, and tears it down on Ctrl-C or SIGTERM. Use it through
// hack/controlplane.sh up.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vidra-operator/vidra/test/controlplane"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	log.SetFlags(log.Ltime)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	var crds stringList
	flag.Var(&crds, "crds", "CRD file or directory to install before the controller manager starts (repeatable)")
	dir := flag.String("dir", "", "directory for the control plane's files (default: a temp dir removed on exit)")
	kubeconfigOut := flag.String("kubeconfig-out", "", "also write the admin kubeconfig to this path")
	name := flag.String("name", "vidra-dev", "name used in logs and the temp dir")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cp, err := controlplane.Start(ctx, controlplane.Config{
		Name:     *name,
		CRDPaths: crds,
		Dir:      *dir,
		Logf:     log.Printf,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			log.Print(err)
		}
	}()

	kubeconfig := cp.KubeconfigPath()
	if *kubeconfigOut != "" {
		if kubeconfig, err = copyFile(cp.KubeconfigPath(), *kubeconfigOut); err != nil {
			return err
		}
	}
	fmt.Printf("kubeconfig: %s\nkubectl:    %s\nlogs:       %s\n\nexport KUBECONFIG=%s\n\n",
		kubeconfig, cp.KubectlPath(), cp.Dir(), kubeconfig)
	log.Print("control plane running; Ctrl-C to stop")
	<-ctx.Done()
	log.Print("stopping")
	return nil
}

// copyFile copies the kubeconfig through a temp file and rename, so a reader
// never sees half a file, and returns the absolute destination.
func copyFile(src, dst string) (string, error) {
	dst, err := filepath.Abs(dst)
	if err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".kubeconfig-*")
	if err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("kubeconfig-out: %w", err)
	}
	return dst, nil
}
