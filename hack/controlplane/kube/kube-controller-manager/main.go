// Command kube-controller-manager is the upstream controller manager, built
// from the Go module proxy for the test control plane
// (hack/controlplane/build.sh). It provides garbage collection, namespace
// deletion, service-account tokens and the workload controllers.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones without a system tzdata

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
