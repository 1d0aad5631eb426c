package inspect

import (
	"fmt"

	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// OpenHost pins the host's network namespace (the one r.Host names), from
// the same witnesses nsfs.HostID reads: PID 1, kthreadd, nsdebug itself.
func OpenHost(r *resolver.Resolver) (*nsfs.Netns, error) {
	id, _, err := r.Host()
	if err != nil {
		return nil, err
	}
	var last error
	for _, p := range []string{r.ProcRoot() + "/1/ns/net", r.ProcRoot() + "/2/ns/net", r.ProcRoot() + "/thread-self/ns/net"} {
		ns, err := nsfs.Open(p)
		if err != nil {
			last = err
			continue
		}
		if ns.ID == id {
			return ns, nil
		}
		ns.Close()
	}
	if last == nil {
		// Every witness opened, none is the namespace HostID saw: the
		// witnesses moved between the two looks (a PID 1 that setns'd?).
		last = fmt.Errorf("the host network namespace %s changed while it was being opened", id)
	}
	return nil, last
}
