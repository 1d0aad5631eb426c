package nsfs

import (
	"os"
	"strings"
)

// uidMapFile is read to tell whether nsdebug runs in the initial user
// namespace (a variable for tests).
var uidMapFile = "/proc/self/uid_map"

// InUserNS reports whether this process runs in a user namespace other than
// the initial one, and which host UID its UID 0 is: root there (podman
// unshare, a rootless container) is not root on the host. setns into a
// namespace owned by a user namespace that is not ours or below ours is
// refused, and so is opening the ns files of processes outside it.
func InUserNS() (inside bool, hostUID string) {
	b, err := os.ReadFile(uidMapFile)
	if err != nil {
		return false, ""
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		// The initial user namespace maps every UID to itself.
		if f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
			return false, ""
		}
		if f[0] == "0" {
			hostUID = f[1]
		}
	}
	return true, hostUID
}

// UserNSHint explains a refused namespace operation when nsdebug runs in a
// user namespace: "" in the initial one (the refusal has another cause).
func UserNSHint() string {
	inside, uid := InUserNS()
	if !inside {
		return ""
	}
	who := "an unprivileged user"
	if uid != "" {
		who = "UID " + uid
	}
	return "nsdebug runs as root of a user namespace (" + who + " on the host, e.g. under 'podman unshare'): it reaches that user's rootless containers, not the host's or other users'; run it as root on the host"
}
