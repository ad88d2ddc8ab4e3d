// Command kubectl is the upstream kubectl, built from the Go module proxy so
// tests and demos use a client that matches the test control plane
// (hack/controlplane/build.sh).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	// RunNoErrOutput leaves error printing to CheckErr, which formats API
	// errors the way users of kubectl expect.
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
	os.Exit(0)
}
