package enter

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Both kinds of netlink socket are made inside the target and keep dumping
// the target's links when used from the test's own (host) thread; iproute2
// inside the namespace is the ground truth.
func TestNetlinkSocketsBelongToTheTarget(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	n := testbed.NewNetNS(t, "nlsock")
	n.Exec(t, "ip", "link", "add", "nlsock-a", "type", "veth", "peer", "name", "nlsock-b")
	ns := openNS(t, n)
	var ipLinks []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(n.Exec(t, "ip", "-j", "link", "show")), &ipLinks); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range ipLinks {
		want = append(want, l.Name)
	}
	slices.Sort(want)

	h, err := NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var viaHandle []string
	for _, l := range links {
		viaHandle = append(viaHandle, l.Attrs().Name)
	}
	slices.Sort(viaHandle)
	if !slices.Equal(viaHandle, want) {
		t.Fatalf("NetlinkHandle lists %v, ip in the namespace %v", viaHandle, want)
	}

	s, err := NetlinkSocket(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		t.Fatal(err)
	}
	var viaSocket []string
	for _, m := range msgs {
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				viaSocket = append(viaSocket, string(a.Value[:len(a.Value)-1]))
			}
		}
	}
	slices.Sort(viaSocket)
	if !slices.Equal(viaSocket, want) {
		t.Fatalf("NetlinkSocket lists %v, ip in the namespace %v", viaSocket, want)
	}
	if got := threadNS(t); got != home {
		t.Fatalf("the test's thread is in %s, not home %s", got, home)
	}
	allThreadsIn(t, home)
}
