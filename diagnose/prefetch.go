package diagnose

import (
	"context"
	"sync"
)

// HostPrefetch is the host evidence that needs no target: both
// iptables-save runs (two forks, the longest of the host's reads) and the
// CNI configuration. StartHostPrefetch starts it before the targets are
// resolved, so that it overlaps the runtimes' answers instead of following
// them; Run then only waits for it.
type HostPrefetch struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	ipt     map[string]*Ruleset
	iptErr  map[string]string
	cni     []SubnetOwner
	cniWarn []string
}

// StartHostPrefetch starts reading the host's rules (in nsdebug's own
// network namespace, the host's when it runs there) and cniDir ("" is
// DefaultCNIConfDir). Close it when done: a command that fails before Run
// must not leave an iptables-save behind.
func StartHostPrefetch(ctx context.Context, cniDir string) *HostPrefetch {
	if cniDir == "" {
		cniDir = DefaultCNIConfDir
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &HostPrefetch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.cni, p.cniWarn = cniSubnets(cniDir)
		}()
		p.ipt, p.iptErr = readIPTables(ctx, nil)
		wg.Wait()
	}()
	return p
}

// wait returns the prefetched evidence.
func (p *HostPrefetch) wait() *HostPrefetch {
	<-p.done
	return p
}

// Close stops what is still running and waits for it.
func (p *HostPrefetch) Close() {
	if p == nil {
		return
	}
	p.once.Do(p.cancel)
	<-p.done
}
