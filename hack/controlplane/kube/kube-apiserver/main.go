// Command kube-apiserver is the upstream API server, built from the Go module
// proxy for the test control plane (hack/controlplane/build.sh).
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones without a system tzdata

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
