package diagnose

import "strconv"

// Thresholds are every number a verdict depends on, in one place. The
// README's check table repeats them with the same reasons; a test keeps the
// two in step.
var Thresholds = []Threshold{
	{"conntrack.fill", "warn_ratio", 0.80, "count/max: at 80% a burst (a deploy, a retry storm) fills the rest in seconds"},
	{"conntrack.fill", "fail_ratio", 0.95, "count/max: at 95% new flows are already being early-dropped under load"},
	{"tcp.retrans", "warn_ratio", 0.02, "RetransSegs/OutSegs over the interval: above 2% TCP throughput falls visibly"},
	{"tcp.retrans", "fail_ratio", 0.05, "RetransSegs/OutSegs: above 5% connections stall and time out"},
	{"tcp.retrans", "min_segments", 200, "fewer segments sent in the interval prove nothing either way"},
	{"ports.ephemeral", "warn_ratio", 0.50, "sockets to one destination / ip_local_port_range size: half used leaves no headroom for a burst"},
	{"ports.ephemeral", "fail_ratio", 0.90, "above 90% connect() starts failing with EADDRNOTAVAIL"},
	{"listen.queue", "full_ratio", 1.0, "accept queue length >= backlog: the kernel drops new SYNs/ACKs for that listener"},
	{"dns.search", "ndots", 2, "ndots >= 2 makes most names be tried against every search domain first"},
	{"dns.search", "search_domains", 3, "with 3+ search domains each lookup of an outside name costs 4+ queries (the Kubernetes 5 s delays)"},
	{"dns.probe", "timeout_s", 1, "a resolver slower than 1 s is what applications see as 'DNS is slow' (glibc retries after 5 s)"},
	{"dns.probe", "queries", 2, "two queries, one retry: bounded, and one lost UDP datagram is not a verdict"},
}

// Threshold is one number used by a check.
type Threshold struct {
	Check  string  `json:"check"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Reason string  `json:"reason"`
}

// threshold returns the value registered for check and name; a missing one
// is a programming error caught by the tests.
func threshold(check, name string) float64 {
	for _, t := range Thresholds {
		if t.Check == check && t.Name == name {
			return t.Value
		}
	}
	panic("diagnose: no threshold " + check + "." + name)
}

// fmtValue prints a threshold as the README does.
func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
