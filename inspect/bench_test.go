package inspect

import (
	"context"
	"testing"

	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
	"github.com/nsdebug/nsdebug/resolver"
)

// Benchmarks for profiling ls and inspect on whatever this host holds
// (scripts/bench.sh makes 500 and 5000 namespaces):
//
//	go test -tags grpcnotrace -run '^$' -bench ListNetns -cpuprofile ls.prof ./inspect
//
// Speed goals are judged by make bench's side-by-side ratios, not here.

func BenchmarkListNetns(b *testing.B) {
	testbed.Require(b)
	r := resolver.Open(resolver.Config{})
	defer r.Close()
	for i := 0; i < b.N; i++ {
		inv, err := ListNetns(context.Background(), r, ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(inv.Rows) == 0 {
			b.Fatal("no namespaces listed")
		}
	}
}

func BenchmarkInspectSelf(b *testing.B) {
	testbed.RequireRoot(b)
	ns, err := nsfs.Open("/proc/self/ns/net")
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	host, err := OpenHost(resolver.New(resolver.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	for i := 0; i < b.N; i++ {
		if _, err := Inspect(context.Background(), ns, Options{Host: host}); err != nil {
			b.Fatal(err)
		}
	}
}
