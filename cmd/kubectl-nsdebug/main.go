// Command kubectl-nsdebug is the kubectl plugin: see package kube.
package main

import (
	"os"

	"github.com/nsdebug/nsdebug/kube"
)

func main() {
	os.Exit(kube.Main(os.Args[1:], kube.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
