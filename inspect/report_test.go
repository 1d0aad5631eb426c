package inspect

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

func TestRetryDump(t *testing.T) {
	calls := 0
	v, err := RetryDump(func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{1}, netlink.ErrDumpInterrupted // half-filled
		}
		return []int{1, 2}, nil
	})
	if err != nil || !reflect.DeepEqual(v, []int{1, 2}) || calls != 3 {
		t.Fatalf("got %v %v after %d calls", v, err, calls)
	}

	calls = 0
	v, err = RetryDump(func() ([]int, error) { calls++; return []int{9}, netlink.ErrDumpInterrupted })
	if v != nil || !errors.Is(err, netlink.ErrDumpInterrupted) || calls != maxDumpAttempts {
		t.Fatalf("always interrupted: got %v %v after %d calls", v, err, calls)
	}

	boom := errors.New("boom")
	calls = 0
	v, err = RetryDump(func() ([]int, error) { calls++; return []int{9}, boom })
	if v != nil || !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("other error: got %v %v after %d calls", v, err, calls)
	}
}

func TestParseSections(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
		bad  bool
	}{
		{nil, Sections, false},
		{[]string{"sockets,links"}, []string{"links", "sockets"}, false},
		{[]string{"routes", "addresses"}, []string{"addrs", "routes"}, false},
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
		ip   string
		port uint16
		want string
	}{
		{"0.0.0.0", 8080, "0.0.0.0:8080"},
		{"127.0.0.1", 0, "127.0.0.1:*"},
		{"::", 53, "[::]:53"},
		{"fd00::2", 443, "[fd00::2]:443"},
	}
	for _, c := range cases {
		if got := hostPort(net.ParseIP(c.ip), c.port); got != c.want {
			t.Errorf("%s %d: %q, want %q", c.ip, c.port, got, c.want)
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
