package sysctl

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

func TestParseKeyAccepts(t *testing.T) {
	cases := []struct{ in, name, path string }{
		{"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_time", "/proc/sys/net/ipv4/tcp_keepalive_time"},
		{"net/ipv4/tcp_keepalive_time", "net.ipv4.tcp_keepalive_time", "/proc/sys/net/ipv4/tcp_keepalive_time"},
		{"/proc/sys/net/core/somaxconn", "net.core.somaxconn", "/proc/sys/net/core/somaxconn"},
		// sysctl(8): in dotted form '/' is a literal '.' in a component.
		{"net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
		// ... and in path form '.' is literal.
		{"net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
		{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-iptables"},
		{"net.ipv4.conf.eth0", "net.ipv4.conf.eth0", "/proc/sys/net/ipv4/conf/eth0"}, // a group
		{"net.ipv4.conf.a/.b", "net.ipv4.conf.a/.b", "/proc/sys/net/ipv4/conf/a./b"}, // "a." is a legal ifname
	}
	for _, c := range cases {
		k, err := ParseKey(c.in)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", c.in, err)
			continue
		}
		if k.Name != c.name || k.Path() != c.path {
			t.Errorf("ParseKey(%q) = %q %q, want %q %q", c.in, k.Name, k.Path(), c.name, c.path)
		}
		// The canonical name parses to the same file.
		if k2, err := ParseKey(k.Name); err != nil || k2 != k {
			t.Errorf("ParseKey(%q) (canonical of %q) = %+v %v, want %+v", k.Name, c.in, k2, err, k)
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	cases := []struct{ in, why string }{
		{"", "empty"},
		{"kernel.core_pattern", "not a network sysctl"},
		{"fs.file-max", "not a network sysctl"},
		{"vm/swappiness", "not a network sysctl"},
		{"/proc/sys/kernel/core_pattern", "not a network sysctl"},
		{"/proc/sys/../../etc/passwd", `contains ".."`},
		{"/proc/sys/kernel/../net/core/somaxconn", `contains ".."`},
		{"net", "names all of net"},
		{"network.foo", "not a network sysctl"},
		{"net.ipv4.conf.eth0/../../../kernel/core_pattern", `contains ".."`},
		{"net/ipv4/../../kernel/core_pattern", `contains ".."`},
		{"net/./core/somaxconn", `"." component`},
		{"net/core/somaxconn/..", `contains ".."`},
		{"net.core..somaxconn", `contains ".."`},
		{"net.core.somaxconn/.", "empty component"},
		{"net.core.somaxconn.", "empty component"},
		{"net//core/somaxconn", "empty component"},
		{"net/core/somaxconn/", "empty component"},
		{"/net/core/somaxconn", "not a network sysctl"},
		{".net.core.somaxconn", "not a network sysctl"},
		{"net.core.some\nthing", "control character"},
		{"net.core.some\x00thing", "control character"},
		{"net.core.some thing", "space"},
		{"net.core." + strings.Repeat("a", MaxKeyLen), "too long"},
	}
	for _, c := range cases {
		_, err := ParseKey(c.in)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", c.in)
			continue
		}
		if !errors.Is(err, nserr.ErrUsage) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseKey(%q) = %v, want a usage error with %q", c.in, err, c.why)
		}
		if strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("ParseKey(%q): message is not one clean line: %q", c.in, err)
		}
	}
}

func TestValidateValue(t *testing.T) {
	k, _ := ParseKey("net.ipv4.ip_local_port_range")
	for _, v := range []string{"32768 60999", "32768\t60999", "1", "cubic", strings.Repeat("1", MaxValueLen)} {
		if err := ValidateValue(k, v); err != nil {
			t.Errorf("ValidateValue(%q): %v", v, err)
		}
	}
	for v, why := range map[string]string{
		"":                                 "empty",
		"1\n2":                             "newline",
		"1\r":                              "newline",
		"1\x00":                            "NUL",
		"1\x1b[0m":                         "control character",
		strings.Repeat("1", MaxValueLen+1): "too long",
	} {
		err := ValidateValue(k, v)
		if err == nil || !errors.Is(err, nserr.ErrUsage) || !strings.Contains(err.Error(), why) {
			t.Errorf("ValidateValue(%.20q) = %v, want usage error with %q", v, err, why)
		}
	}
}

func TestParseOps(t *testing.T) {
	ops, err := ParseOps([]string{"net.core.somaxconn", "net/ipv4/tcp_keepalive_time=600", "net.ipv4.ip_local_port_range=1024 2000", "net.ipv4.tcp_congestion_control=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{Key: Key{"net.core.somaxconn", "core/somaxconn"}},
		{Key: Key{"net.ipv4.tcp_keepalive_time", "ipv4/tcp_keepalive_time"}, Value: "600", Write: true},
		{Key: Key{"net.ipv4.ip_local_port_range", "ipv4/ip_local_port_range"}, Value: "1024 2000", Write: true},
		{Key: Key{"net.ipv4.tcp_congestion_control", "ipv4/tcp_congestion_control"}, Value: "a=b", Write: true},
	}
	if len(ops) != len(want) {
		t.Fatalf("ops = %+v", ops)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("op %d = %+v, want %+v", i, ops[i], want[i])
		}
	}
	if !HasWrites(ops) || HasWrites(ops[:1]) {
		t.Error("HasWrites")
	}
	// One bad argument anywhere rejects the whole list.
	for _, args := range [][]string{
		{"net.core.somaxconn=1", "kernel.core_pattern=|/bin/x"},
		{"net.core.somaxconn=1", "net.core.somaxconn="},
		{"net.core.somaxconn=1\n2"},
		{"=1"},
	} {
		if _, err := ParseOps(args); !errors.Is(err, nserr.ErrUsage) {
			t.Errorf("ParseOps(%q) = %v, want usage error", args, err)
		}
	}
}

func TestDiff(t *testing.T) {
	target := []Value{{"net.core.somaxconn", "128"}, {"net.ipv4.tcp_keepalive_time", "7200"}, {"net.ipv4.conf.eth0.rp_filter", "1"}, {"net.netfilter.nf_conntrack_count", "3"}}
	host := []Value{{"net.core.somaxconn", "4096"}, {"net.ipv4.tcp_keepalive_time", "7200"}, {"net.netfilter.nf_conntrack_count", "90"}, {"net.core.busy_poll", "0"}}
	got := Diff(target, host)
	if len(got) != 1 || got[0] != (DiffEntry{"net.core.somaxconn", "128", "4096"}) {
		t.Errorf("Diff = %+v", got)
	}
}

// Per-interface keys are compared only for all, default and lo: an eth0 in
// the target and an eth0 on the host are different devices.
func TestDiffComparesOnlySharedInterfaceNames(t *testing.T) {
	target := []Value{
		{"net.ipv4.conf.eth0.rp_filter", "2"}, {"net.ipv6.conf.eth0.mtu", "1400"}, {"net.ipv4.neigh.eth0.gc_stale_time", "30"},
		{"net.ipv6.neigh.eth0/100.retrans_time_ms", "2000"}, {"net.ipv4.conf.eth0/100.rp_filter", "2"},
		{"net.ipv4.conf.all.rp_filter", "2"}, {"net.ipv4.conf.default.rp_filter", "2"}, {"net.ipv4.conf.lo.rp_filter", "2"},
		{"net.ipv6.conf.lo.mtu", "1500"}, {"net.ipv4.neigh.default.gc_stale_time", "30"}, {"net.ipv6.neigh.lo.retrans_time_ms", "2000"},
	}
	host := []Value{
		{"net.ipv4.conf.eth0.rp_filter", "1"}, {"net.ipv6.conf.eth0.mtu", "1500"}, {"net.ipv4.neigh.eth0.gc_stale_time", "60"},
		{"net.ipv6.neigh.eth0/100.retrans_time_ms", "1000"}, {"net.ipv4.conf.eth0/100.rp_filter", "1"},
		{"net.ipv4.conf.all.rp_filter", "1"}, {"net.ipv4.conf.default.rp_filter", "1"}, {"net.ipv4.conf.lo.rp_filter", "1"},
		{"net.ipv6.conf.lo.mtu", "65536"}, {"net.ipv4.neigh.default.gc_stale_time", "60"}, {"net.ipv6.neigh.lo.retrans_time_ms", "1000"},
	}
	var got []string
	for _, d := range Diff(target, host) {
		got = append(got, d.Key)
	}
	want := []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", "net.ipv4.conf.lo.rp_filter", "net.ipv6.conf.lo.mtu", "net.ipv4.neigh.default.gc_stale_time", "net.ipv6.neigh.lo.retrans_time_ms"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Diff keys = %v, want %v", got, want)
	}
}

// FuzzParseKey: any accepted key maps to a path under /proc/sys/net/ with no
// "." or ".." component, and its canonical name maps to the same path.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"net.ipv4.tcp_keepalive_time", "net/ipv4/tcp_keepalive_time", "net.ipv4.conf.eth0/100.rp_filter",
		"net.ipv4.conf.eth0/../../../kernel/core_pattern", "net/ipv4/../../kernel/core_pattern",
		"/proc/sys/net/core/somaxconn", "/proc/sys/net/../kernel/x", "net./..", "net/.../x", "net.a/.b", "net/a./b",
		"kernel.core_pattern", "net", "net.", "net..", "net/", "\x00", "net.\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, nserr.ErrUsage) {
				t.Fatalf("ParseKey(%q): error without usage kind: %v", s, err)
			}
			return
		}
		p := k.Path()
		if !strings.HasPrefix(p, Root+"/") || path.Clean(p) != p || strings.ContainsAny(p, "\x00\n") {
			t.Fatalf("ParseKey(%q) -> %q: not a clean path under %s/", s, p, Root)
		}
		for _, c := range strings.Split(strings.TrimPrefix(p, Root+"/"), "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("ParseKey(%q) -> %q: component %q", s, p, c)
			}
		}
		k2, err := ParseKey(k.Name)
		if err != nil || k2 != k {
			t.Fatalf("canonical %q of %q -> %+v, %v; want %+v", k.Name, s, k2, err, k)
		}
	})
}

func TestCheckValue(t *testing.T) {
	somax := Key{"net.core.somaxconn", "core/somaxconn"}
	ports := Key{"net.ipv4.ip_local_port_range", "ipv4/ip_local_port_range"}
	cases := []struct {
		key        Key
		current, v string
		ok         bool
		why        string
	}{
		{somax, "4096", "128", true, ""},
		{somax, "4096", "0x10", true, ""},
		{somax, "4096", "0X1f", true, ""},
		{somax, "4096", "010", true, ""},
		{somax, "4096", "-1", true, ""},
		{somax, "4096", "-0x10", true, ""},
		{somax, "4096", " 7 \t", true, ""},
		{somax, "4096", "18446744073709551615", true, ""},
		{somax, "4096", "77 88", false, "holds 1 integer (now 4096), 2 given"},
		{somax, "4096", "abc", false, `"abc" is not an integer`},
		{somax, "4096", "77abc", false, "not an integer"},
		{somax, "4096", "+77", false, "not an integer"},
		{somax, "4096", "--7", false, "not an integer"},
		{somax, "4096", "-", false, "not an integer"},
		{somax, "4096", "08", false, "not an integer"},
		{somax, "4096", "0x", false, "not an integer"},
		{somax, "4096", "0x1g", false, "not an integer"},
		{somax, "4096", "1_000", false, "not an integer"},
		{somax, "4096", "18446744073709551616", false, "not an integer"},
		{somax, "4096", "000000000000000000001", false, "not an integer"},
		{somax, "4096", " \t ", false, "has none"},
		{ports, "32768\t60999", "1024 2000", true, ""},
		{ports, "32768\t60999", "1024", true, ""},
		{ports, "32768\t60999", "1024\t2000", true, ""},
		{ports, "32768\t60999", "1 2 3", false, "holds 2 integers (now 32768 60999), 3 given; the kernel would keep the first 2"},
		{ports, "32768\t60999", "1 x", false, `"x" is not an integer`},
		// Not integer sysctls: left to the kernel.
		{Key{"net.ipv4.tcp_congestion_control", "ipv4/tcp_congestion_control"}, "cubic", "bbr reno", true, ""},
		{Key{"net.ipv4.tcp_rmem", "ipv4/tcp_rmem"}, "", "x", true, ""},
		{Key{"net.core.rps_default_mask", "core/rps_default_mask"}, "0", "ff,ffffffff", true, ""},
		{Key{"net.core.flow_limit_cpu_bitmap", "core/flow_limit_cpu_bitmap"}, "00", "f", true, ""},
		{Key{"net.ipv4.ip_local_reserved_ports", "ipv4/ip_local_reserved_ports"}, "8080", "8080,9000-9010", true, ""},
		{Key{"net.ipv6.icmp.ratemask", "ipv6/icmp/ratemask"}, "3", "0-1,3-127", true, ""},
	}
	for _, c := range cases {
		err := CheckValue(c.key, c.current, c.v)
		if c.ok {
			if err != nil {
				t.Errorf("CheckValue(%s, %q, %q) = %v, want ok", c.key.Name, c.current, c.v, err)
			}
			continue
		}
		if !errors.Is(err, nserr.ErrUsage) || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), c.key.Name) || !strings.HasSuffix(err.Error(), "nothing was written") {
			t.Errorf("CheckValue(%s, %q, %q) = %v, want a usage error naming the key with %q", c.key.Name, c.current, c.v, err, c.why)
		}
	}
}
