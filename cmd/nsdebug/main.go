// Command nsdebug: see package cmd.
package main

import (
	"os"

	"github.com/nsdebug/nsdebug/cmd"
)

// As docker-nsdebug (a link or copy in a cli-plugins directory) it is the
// Docker CLI plugin.
func main() { os.Exit(cmd.MainAs(os.Args[0], os.Args[1:], cmd.SystemStreams())) }
