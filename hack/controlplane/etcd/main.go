// Command etcd is a stock etcd server, built from the Go module proxy for the
// test control plane (hack/controlplane/build.sh).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
