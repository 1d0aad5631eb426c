package diagnose

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Counters are a namespace's cumulative counters at one moment: the SNMP
// MIB files by "Group.Name" (TcpExt.ListenOverflows, Tcp.RetransSegs) and
// nf_conntrack's statistics summed over CPUs by column name.
type Counters struct {
	Net          map[string]int64
	Conntrack    map[string]int64
	NetErr       string
	ConntrackErr string
}

// readCounters must run on a thread inside the namespace: /proc/thread-self/net
// is that thread's namespace's view (/proc/self/net would be the
// thread-group leader's).
func readCounters() Counters {
	c := Counters{Net: map[string]int64{}}
	var errs []string
	for _, f := range []string{"netstat", "snmp"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := parseMIB(string(b), c.Net); err != nil {
			errs = append(errs, f+": "+err.Error())
		}
	}
	c.NetErr = strings.Join(errs, "; ")
	b, err := os.ReadFile("/proc/thread-self/net/stat/nf_conntrack")
	if err != nil {
		c.ConntrackErr = "conntrack statistics: " + err.Error()
	} else if c.Conntrack, err = parseConntrackStat(string(b)); err != nil {
		c.ConntrackErr = "conntrack statistics: " + err.Error()
	}
	return c
}

// parseMIB reads /proc/net/netstat and /proc/net/snmp: pairs of lines, the
// first naming the columns ("TcpExt: SyncookiesSent ..."), the second their
// values. Columns are taken by name: their set and order change between
// kernels.
func parseMIB(s string, into map[string]int64) error {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		hg, hrest, ok1 := strings.Cut(lines[i], ":")
		vg, vrest, ok2 := strings.Cut(lines[i+1], ":")
		if !ok1 || !ok2 || hg != vg {
			return fmt.Errorf("line %d: header and values do not pair", i+1)
		}
		names, vals := strings.Fields(hrest), strings.Fields(vrest)
		if len(names) != len(vals) {
			return fmt.Errorf("%s: %d names, %d values", hg, len(names), len(vals))
		}
		for j, n := range names {
			v, err := strconv.ParseInt(vals[j], 10, 64)
			if err != nil {
				continue // a non-numeric field (none today) is not a counter
			}
			into[hg+"."+n] = v
		}
	}
	return nil
}

// parseConntrackStat sums /proc/net/stat/nf_conntrack's per-CPU rows (hex)
// by column name; "entries" is the same global count on every row, so it is
// taken once.
func parseConntrackStat(s string) (map[string]int64, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("no rows")
	}
	names := strings.Fields(lines[0])
	out := map[string]int64{}
	for _, l := range lines[1:] {
		vals := strings.Fields(l)
		if len(vals) != len(names) {
			return nil, fmt.Errorf("%d columns named, %d in a row", len(names), len(vals))
		}
		for j, n := range names {
			v, err := strconv.ParseInt(vals[j], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", n, err)
			}
			if n == "entries" {
				out[n] = v
				continue
			}
			out[n] += v
		}
	}
	return out, nil
}

// delta is how much a counter rose between two reads; ok is false when
// either read lacks it.
func delta(before, after map[string]int64, key string) (int64, bool) {
	a, ok1 := before[key]
	b, ok2 := after[key]
	if !ok1 || !ok2 {
		return 0, false
	}
	return b - a, true
}
