package diagnose

import (
	"context"
	"sync"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/resolver"
)

// ResolveAll resolves every container and pod namespace on the host (one
// result per namespace, its first owner naming it). Namespaces no runtime
// claims are left out; the host's too. The caller closes the results.
func ResolveAll(ctx context.Context, r *resolver.Resolver) ([]*resolver.Result, []string, error) {
	inv, err := inspect.ListNetns(ctx, r, inspect.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	warnings := append([]string{}, inv.Warnings...)
	var refs []string
	for _, rw := range inv.Rows {
		if rw.Host || len(rw.Owners) == 0 {
			continue
		}
		refs = append(refs, rw.Owners[0].Ref())
	}
	out := make([]*resolver.Result, len(refs))
	errs := make([]error, len(refs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, ref string) {
			defer func() { <-sem; wg.Done() }()
			t, err := resolver.ParseTarget(ref)
			if err == nil {
				out[i], err = r.Resolve(ctx, t)
			}
			errs[i] = err
		}(i, ref)
	}
	wg.Wait()
	var res []*resolver.Result
	for i := range refs {
		if errs[i] != nil {
			// Gone since the listing, or unreadable: the others still run.
			warnings = append(warnings, refs[i]+": "+errs[i].Error())
			continue
		}
		res = append(res, out[i])
	}
	return res, warnings, nil
}
