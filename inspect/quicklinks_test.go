package inspect

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type seenAttr struct {
	typ uint16
	val []byte
}

func walkAll(b []byte) ([]seenAttr, error) {
	var out []seenAttr
	err := walkAttrs(b, func(typ uint16, val []byte) { out = append(out, seenAttr{typ, append([]byte(nil), val...)}) })
	return out, err
}

// walkAttrs must see exactly what the library's ParseRouteAttr sees.
func checkWalkMatchesLibrary(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := walkAll(b)
	want, werr, panicked := parseWithLibrary(b)
	if panicked {
		// The library slices past the end when the last attribute's
		// padding is missing (a kernel never sends that); walkAttrs
		// stops there instead, which is all that can be asked.
		return
	}
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("errors differ on %x: library %v, walk %v", b, werr, gerr)
	}
	if werr != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("on %x: walk saw %d attributes, library %d", b, len(got), len(want))
	}
	for i := range want {
		if got[i].typ != want[i].Attr.Type&nl.NLA_TYPE_MASK || !bytes.Equal(got[i].val, want[i].Value) {
			t.Fatalf("attribute %d on %x: walk %d %x, library %d %x", i, b, got[i].typ, got[i].val, want[i].Attr.Type, want[i].Value)
		}
	}
}

func parseWithLibrary(b []byte) (attrs []syscall.NetlinkRouteAttr, err error, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	attrs, err = nl.ParseRouteAttr(b)
	return attrs, err, false
}

func serialize(attrs ...*nl.RtAttr) []byte {
	var b []byte
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func TestWalkAttrs(t *testing.T) {
	info := nl.NewRtAttr(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, nil)
	info.AddRtAttr(unix.IFLA_INFO_KIND, nl.ZeroTerminated("veth"))
	msg := serialize(
		nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("eth0")),
		nl.NewRtAttr(unix.IFLA_OPERSTATE, []byte{6}), // 1 byte: padded to 4
		info,
		nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(1500)),
	)
	got, err := walkAll(msg)
	if err != nil || len(got) != 4 || string(got[0].val) != "eth0\x00" || got[1].val[0] != 6 || got[2].typ != unix.IFLA_LINKINFO {
		t.Fatalf("walk = %v, %v", got, err)
	}
	kind, _ := walkAll(got[2].val)
	if len(kind) != 1 || cString(kind[0].val) != "veth" {
		t.Fatalf("nested kind = %v", kind)
	}
	for _, b := range [][]byte{
		msg,
		nil,
		{1, 0},                       // shorter than a header: nothing
		{3, 0, 1, 0},                 // length below the header size
		{200, 0, 1, 0, 'x', 0, 0, 0}, // length past the end
		msg[:len(msg)-2],             // last attribute cut short
	} {
		checkWalkMatchesLibrary(t, b)
	}
}

func FuzzWalkAttrs(f *testing.F) {
	f.Add(serialize(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("lo")), nl.NewRtAttr(unix.IFLA_OPERSTATE, []byte{0})))
	f.Add([]byte{5, 0, 3, 0, 'a', 0, 0, 0, 4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) { checkWalkMatchesLibrary(t, b) })
}
