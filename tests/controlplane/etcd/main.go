// Command etcd is the etcd server at the version k8s.io/kubernetes pins, built from Go modules
// because no etcd release binary can be downloaded on the development machines.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
