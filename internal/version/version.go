// Package version carries build information set by the linker (see Makefile).
package version

import "runtime/debug"

var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Protocol is the version of the contract between kubectl-nsdebug and the
// nsdebug inside its helper pod: the node-side command line (the hidden
// node-helper command, --cri-endpoint kubelet, --host-root) and what it
// prints. Raise it whenever that contract changes incompatibly; the plugin
// refuses a helper image whose nsdebug speaks another. 2: capture's
// --stop-on-stdin-eof.
const Protocol = 2

// Info returns version, commit and date, filling the commit from the Go
// build info when the linker did not set it.
func Info() (v, commit, date string) {
	v, commit, date = Version, Commit, Date
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return
}
