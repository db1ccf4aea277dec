// Command etcd is etcd's own server entry point, built from the etcd server
// module that Kubernetes pins, so that the test control plane uses the etcd
// version Kubernetes is tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
