package inspect

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

func TestParseSections(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
		bad  bool
	}{
		{nil, Sections, false},
		{[]string{"sockets,links"}, []string{"links", "sockets"}, false},
		{[]string{"routes", "addresses"}, []string{"addrs", "routes"}, false},
		{[]string{"neighbors"}, []string{"neigh"}, false},
		{[]string{"neigh,neighbours"}, []string{"neigh"}, false},
		{[]string{"links,,links"}, []string{"links"}, false},
		{[]string{"bogus"}, nil, true},
		{[]string{","}, nil, true},
	}
	for _, c := range cases {
		got, err := ParseSections(c.in)
		if c.bad {
			if !errors.Is(err, nserr.ErrUsage) {
				t.Errorf("%q: want a usage error, got %v %v", c.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseWhois(t *testing.T) {
	cases := []struct {
		in   string
		want whoisQuery
	}{
		{"172.17.0.3", whoisQuery{ip: net.ParseIP("172.17.0.3")}},
		{"[fd00::2]", whoisQuery{ip: net.ParseIP("fd00::2")}},
		{"veth3f2a1b", whoisQuery{name: "veth3f2a1b"}},
		{"551", whoisQuery{inode: 551, pid: 551, ifindex: 551}},
		{"4026531833", whoisQuery{inode: 4026531833}},
		{"pid:42", whoisQuery{pid: 42}},
		{"ifindex:7", whoisQuery{ifindex: 7}},
		{"net:[4026531833]", whoisQuery{inode: 4026531833}},
		{"inode:12", whoisQuery{inode: 12}},
	}
	for _, c := range cases {
		if got := parseWhois(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"pid:x", "pid:0", "ifindex:", "net:[a]", "a/b", "averyveryverylongname", "has space"} {
		if q := parseWhois(bad); q.bad == "" {
			t.Errorf("%q: accepted as %+v", bad, q)
		}
	}
}

func TestHostPortAsSS(t *testing.T) {
	cases := []struct {
		family uint8
		ip     string
		port   uint16
		want   string
	}{
		{unix.AF_INET, "0.0.0.0", 8080, "0.0.0.0:8080"},
		{unix.AF_INET, "127.0.0.1", 0, "127.0.0.1:*"},
		{unix.AF_INET6, "::", 53, "[::]:53"},
		{unix.AF_INET6, "fd00::2", 443, "[fd00::2]:443"},
		// An inet6 socket of a dual-stack listener talking to IPv4.
		{unix.AF_INET6, "::ffff:127.0.0.1", 9000, "[::ffff:127.0.0.1]:9000"},
	}
	for _, c := range cases {
		if got := hostPort(c.family, net.ParseIP(c.ip), c.port); got != c.want {
			t.Errorf("%d %s %d: %q, want %q", c.family, c.ip, c.port, got, c.want)
		}
	}
}

func TestNeighStateAndHooks(t *testing.T) {
	if got := neighState(netlink.NUD_REACHABLE); got != "REACHABLE" {
		t.Errorf("neighState(REACHABLE) = %q", got)
	}
	if got := neighState(0); got != "NONE" {
		t.Errorf("neighState(0) = %q", got)
	}
	// ip neigh hides NOARP-only entries (the kernel's 0.0.0.0 on lo).
	for st, hide := range map[int]bool{netlink.NUD_NOARP: true, netlink.NUD_PERMANENT: false, netlink.NUD_REACHABLE: false, 0: false, netlink.NUD_NOARP | netlink.NUD_PERMANENT: false} {
		if hiddenNeighbor(st) != hide {
			t.Errorf("hiddenNeighbor(%s) = %v", neighState(st), !hide)
		}
	}
	hook := []byte{8, 0, 1, 0, 0, 0, 0, 1} // NFTA_HOOK_HOOKNUM = 1 (big endian): input
	if got := hookName(2, hook); got != "input" {
		t.Errorf("hookName = %q, want input", got)
	}
}

func TestRenderTextSections(t *testing.T) {
	r := &Report{Links: []Link{{Name: "eth0", Index: 2, Type: "veth", State: "up", MTU: 1500,
		Peer: &Peer{Name: "veth1", Index: 9, Bridge: "docker0", Netns: PeerNetns{Host: true}}}},
		Sockets: []Socket{}}
	var b strings.Builder
	if err := r.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"== links", "veth1#9 in host on docker0", "== sockets"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "== routes") || strings.Contains(out, "\x1b[") {
		t.Errorf("unrequested section or colour in:\n%s", out)
	}
}

// A multipath route keeps its next hops (gateway, dev, weight) in JSON and
// text; ip -j route prints "nexthops" the same way.
func TestRouteMultipath(t *testing.T) {
	_, dst, _ := net.ParseCIDR("10.77.0.0/16")
	r := netlink.Route{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: dst, Protocol: unix.RTPROT_BOOT,
		MultiPath: []*netlink.NexthopInfo{{LinkIndex: 3, Gw: net.ParseIP("10.250.5.2"), Hops: 2}, {LinkIndex: 4, Gw: net.ParseIP("10.250.6.2")}}}
	got := routeOf(r, map[int]string{3: "va", 4: "vb"})
	want := []Nexthop{{Gateway: "10.250.5.2", Dev: "va", Weight: 3}, {Gateway: "10.250.6.2", Dev: "vb", Weight: 1}}
	if !reflect.DeepEqual(got.Nexthops, want) || got.Gateway != "" || got.Dev != "" {
		t.Fatalf("route = %+v, want next hops %+v", got, want)
	}
	var b strings.Builder
	if err := (&Report{Routes: []Route{got}}).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"main unicast 10.77.0.0/16 multipath -", "nexthop weight 3 10.250.5.2 va", "nexthop weight 1 10.250.6.2 vb"} {
		if !hasFields(b.String(), line) {
			t.Errorf("text lacks a line %q:\n%s", line, b.String())
		}
	}
}

// hasFields reports whether a line of text holds fields (space-separated),
// whatever the column widths.
func hasFields(text, fields string) bool {
	want := strings.Join(strings.Fields(fields), " ")
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(" "+strings.Join(strings.Fields(l), " ")+" ", " "+want+" ") {
			return true
		}
	}
	return false
}

// ruleMsg builds an RTM_NEWRULE body as the kernel sends it.
func ruleMsg(family, action, srcLen uint8, flags uint32, attrs ...*nl.RtAttr) []byte {
	hdr := nl.RtMsg{RtMsg: unix.RtMsg{Family: family, Src_len: srcLen, Type: action, Flags: flags}}
	b := hdr.Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func TestParseRuleActions(t *testing.T) {
	u32 := func(v uint32) []byte { return nl.Uint32Attr(v) }
	cases := []struct {
		msg  []byte
		want Rule
	}{
		{ruleMsg(unix.AF_INET, unix.FR_ACT_PROHIBIT, 24, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(100)), nl.NewRtAttr(nl.FRA_SRC, []byte{10, 1, 1, 0})),
			Rule{Priority: 100, Family: "inet", Src: "10.1.1.0/24", Action: "prohibit"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_BLACKHOLE, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(101))),
			Rule{Priority: 101, Family: "inet", Action: "blackhole"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_UNREACHABLE, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(104))),
			Rule{Priority: 104, Family: "inet", Action: "unreachable"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_GOTO, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(105)), nl.NewRtAttr(nl.FRA_GOTO, u32(200))),
			Rule{Priority: 105, Family: "inet", Action: "goto", Goto: 200}},
		{ruleMsg(unix.AF_INET6, unix.FR_ACT_NOP, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(200))),
			Rule{Priority: 200, Family: "inet6", Action: "nop"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_TO_TBL, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(102)), nl.NewRtAttr(nl.FRA_TABLE, u32(200)),
			nl.NewRtAttr(nl.FRA_FWMARK, u32(0x10)), nl.NewRtAttr(nl.FRA_FWMASK, u32(0xff))),
			Rule{Priority: 102, Family: "inet", Table: "200", Fwmark: "0x10", Fwmask: "0xff", Action: "lookup"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_TO_TBL, 0, 0, nl.NewRtAttr(nl.FRA_PRIORITY, u32(103)), nl.NewRtAttr(nl.FRA_TABLE, u32(201)),
			nl.NewRtAttr(nl.FRA_FWMARK, u32(0x20)), nl.NewRtAttr(nl.FRA_FWMASK, u32(0xffffffff))),
			Rule{Priority: 103, Family: "inet", Table: "201", Fwmark: "0x20", Action: "lookup"}},
		{ruleMsg(unix.AF_INET, unix.FR_ACT_TO_TBL, 16, netlink.FibRuleInvert, nl.NewRtAttr(nl.FRA_PRIORITY, u32(106)), nl.NewRtAttr(nl.FRA_TABLE, u32(300)), nl.NewRtAttr(nl.FRA_SRC, []byte{10, 9, 0, 0})),
			Rule{Priority: 106, Family: "inet", Table: "300", Src: "10.9.0.0/16", Action: "lookup", Not: true}},
	}
	for _, c := range cases {
		got, ok, err := parseRule(c.msg)
		if err != nil || !ok || got != c.want {
			t.Errorf("parseRule = %+v %v %v, want %+v", got, ok, err, c.want)
		}
	}
	if _, ok, _ := parseRule(ruleMsg(128 /* RTNL_FAMILY_IPMR */, unix.FR_ACT_TO_TBL, 0, 0)); ok {
		t.Errorf("an ipmr rule is shown; ip rule leaves it out")
	}
}

// legacyEntry is an ipt_entry (112 bytes on 64-bit, 88 target_offset) with
// a target named target whose data is data.
func legacyEntry(target string, data []byte) []byte {
	const entrySize = 112
	t := make([]byte, xtTargetHeader+len(data))
	copy(t[2:], target)
	copy(t[xtTargetHeader:], data)
	b := make([]byte, entrySize+len(t))
	nl.NativeEndian().PutUint16(b[88:], entrySize)
	nl.NativeEndian().PutUint16(b[90:], uint16(len(b)))
	copy(b[entrySize:], t)
	return b
}

// A filter table as the kernel lays it out: INPUT with one rule and its
// policy, FORWARD with only its policy, a user chain with one rule and its
// implicit RETURN, the closing ERROR entry.
func TestCountLegacyRules(t *testing.T) {
	verdict := make([]byte, 4)
	name := func(s string) []byte { b := make([]byte, 32); copy(b, s); return b }
	var blob []byte
	var offs []int
	for _, e := range [][]byte{
		legacyEntry("", verdict),           // INPUT rule
		legacyEntry("", verdict),           // INPUT policy
		legacyEntry("", verdict),           // FORWARD policy
		legacyEntry("ERROR", name("MINE")), // user chain head
		legacyEntry("", verdict),           // MINE rule
		legacyEntry("", verdict),           // MINE's implicit RETURN
		legacyEntry("ERROR", name("ERROR")),
	} {
		offs = append(offs, len(blob))
		blob = append(blob, e...)
	}
	info := make([]byte, getinfoSize)
	put := func(off, v int) { nl.NativeEndian().PutUint32(info[off:], uint32(v)) }
	put(xtTableMaxName, 1<<1|1<<2)     // valid hooks: INPUT, FORWARD
	put(xtTableMaxName+4+4*1, offs[0]) // hook_entry[INPUT]
	put(xtTableMaxName+4+4*2, offs[2]) // hook_entry[FORWARD]
	put(xtTableMaxName+24+4*1, offs[1])
	put(xtTableMaxName+24+4*2, offs[2])
	got, err := countLegacyRules(info, blob, 88)
	want := []NFChain{{Name: "INPUT", Hook: "input", Rules: 1}, {Name: "FORWARD", Hook: "forward", Rules: 0}, {Name: "MINE", Rules: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("countLegacyRules = %+v %v, want %+v", got, err, want)
	}
	// A cut or malformed blob is an error, not a panic.
	for _, bad := range [][]byte{blob[:50], blob[:len(blob)-10], make([]byte, 200)} {
		if _, err := countLegacyRules(info, bad, 88); err == nil {
			t.Errorf("malformed blob of %d bytes accepted", len(bad))
		}
	}
}
