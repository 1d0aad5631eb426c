// Package version carries build information set by the linker (see Makefile).
package version

import "runtime/debug"

var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

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
