// Command nsdebug: see package cmd.
package main

import (
	"os"

	"github.com/nsdebug/nsdebug/cmd"
)

func main() { os.Exit(cmd.Main(os.Args[1:], cmd.SystemStreams())) }
