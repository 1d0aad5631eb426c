// Package hostcheck tells whether nsdebug sees the host the way it must: in
// the host's PID namespace, with a /proc of that namespace. Inside a
// container without --pid=host, the PIDs the runtimes report (host PIDs) name
// other processes or none, and /proc/PID/ns/net would lead to the wrong
// namespace: nsdebug refuses instead of answering wrongly.
package hostcheck

import (
	"os"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// Check returns an ErrEnvironment error when procRoot is not the host PID
// namespace's /proc as seen from a process in that namespace.
func Check(procRoot string) error {
	// /proc/self names this process by its PID in the PID namespace the
	// procfs belongs to; a different number means /proc is another
	// namespace's (or ours is not the one /proc was mounted for).
	self, err := os.Readlink(procRoot + "/self")
	if err != nil {
		return nserr.New(nserr.ErrEnvironment, "%s/self does not resolve: %s is the /proc of another PID namespace; run nsdebug on the host (or in a container with --pid=host and the host's /proc)", procRoot, procRoot)
	}
	if pid, err := strconv.Atoi(self); err != nil || pid != os.Getpid() {
		return nserr.New(nserr.ErrEnvironment, "%s belongs to another PID namespace (it calls this process %s, the kernel says %d); run nsdebug on the host, or in a container with --pid=host", procRoot, self, os.Getpid())
	}
	// Kernel threads are visible only in the initial PID namespace, and
	// kthreadd is always PID 2 there.
	comm, err := os.ReadFile(procRoot + "/2/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "kthreadd" {
		return nserr.New(nserr.ErrEnvironment, "nsdebug is not in the host's PID namespace (PID 2 is not kthreadd): the PIDs container runtimes report would name other processes; run it on the host, or in a container with --pid=host")
	}
	return nil
}
