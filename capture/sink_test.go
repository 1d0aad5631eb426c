package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nsdebug/nsdebug/capture/filter"
)

// Two interfaces, the second added after packets of the first (as --all
// does), statistics blocks at the end: pcapgo reads it all back.
func TestPcapngSinkRoundTrip(t *testing.T) {
	corpus := textCorpus(t)
	var buf bytes.Buffer
	s := NewPcapngSink(&buf)
	a, err := s.AddInterface(Iface{Name: "docker:web/eth0", Description: "eth0 in netns net:[1] (docker:web)", LinkType: filter.EN10MB, SnapLen: DefaultSnapLen})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	write := func(id int, p corpusPacket, dir Direction) {
		t.Helper()
		if err := s.WritePacket(&Packet{Iface: id, TS: ts, Data: p.data, WireLen: len(p.data), Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}
	write(a, corpus[0], DirOut)
	b, err := s.AddInterface(Iface{Name: "pod:shop/cart/eth0", LinkType: filter.EN10MB, SnapLen: DefaultSnapLen})
	if err != nil || b != 1 {
		t.Fatalf("second interface: id %d, %v", b, err)
	}
	write(b, corpus[1], DirIn)
	write(a, corpus[2], DirIn)
	if err := s.EndInterface(a, IfaceStats{Start: ts, End: ts.Add(time.Second), Recv: 5, Drop: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndInterface(b, IfaceStats{Start: ts, End: ts.Add(time.Second), Recv: 1, Drop: 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()

	r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ci.Timestamp.Equal(ts) {
			t.Errorf("timestamp %v, want %v", ci.Timestamp, ts)
		}
		got = append(got, ci.InterfaceIndex)
		if want := corpus[len(got)-1].data; !bytes.Equal(data, want) {
			t.Errorf("packet %d differs", len(got))
		}
	}
	if want := []int{0, 1, 0}; !equalInts(got, want) {
		t.Errorf("interfaces of packets %v, want %v", got, want)
	}
	if r.NInterfaces() != 2 {
		t.Fatalf("%d interfaces", r.NInterfaces())
	}
	i0, _ := r.Interface(0)
	i1, _ := r.Interface(1)
	if i0.Name != "docker:web/eth0" || i0.Description != "eth0 in netns net:[1] (docker:web)" || i1.Name != "pod:shop/cart/eth0" || i1.SnapLength != DefaultSnapLen {
		t.Errorf("interfaces %+v %+v", i0, i1)
	}
	if i0.Statistics.PacketsReceived != 5 || i0.Statistics.PacketsDropped != 2 {
		t.Errorf("statistics of interface 0: %+v", i0.Statistics)
	}

	// tcpdump and tshark read it too, with the interface names.
	path := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(requireTool(t, "tcpdump"), "-nn", "-r", path).Output()
	if err != nil || strings.Count(string(out), "\n") != 3 {
		t.Errorf("tcpdump -r: %v\n%s", err, out)
	}
	out, err = exec.Command(requireTool(t, "tshark"), "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.packet_flags_direction").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, out)
	}
	want := "docker:web/eth0\t0x00000002\npod:shop/cart/eth0\t0x00000001\ndocker:web/eth0\t0x00000001\n" // 2 outbound, 1 inbound
	if string(out) != want {
		t.Errorf("tshark: got\n%s\nwant\n%s", out, want)
	}
}

func TestPcapSinkRoundTrip(t *testing.T) {
	corpus := textCorpus(t)
	var buf bytes.Buffer
	s := NewPcapSink(&buf)
	if _, err := s.AddInterface(Iface{Name: "eth0", LinkType: filter.LinuxSLL2, SnapLen: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddInterface(Iface{Name: "eth1", LinkType: filter.EN10MB}); err == nil {
		t.Error("a second interface in a pcap file was accepted")
	}
	for _, p := range corpus[:3] {
		if err := s.WritePacket(&Packet{TS: time.Unix(5, 1000), Data: p.data, WireLen: len(p.data) + 10}); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	r, err := pcapgo.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeLinuxSLL2 || r.Snaplen() != 1000 {
		t.Errorf("link type %v snaplen %d", r.LinkType(), r.Snaplen())
	}
	for i := 0; i < 3; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, corpus[i].data) || ci.Length != len(data)+10 || !ci.Timestamp.Equal(time.Unix(5, 1000)) {
			t.Errorf("packet %d: %+v", i, ci)
		}
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	os.WriteFile(path, buf.Bytes(), 0o644)
	out, err := exec.Command(requireTool(t, "tcpdump"), "-r", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LINUX_SLL2") {
		t.Errorf("tcpdump -r: %v\n%s", err, out)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The frames rebuilt from a ring entry decode as what was on the wire: the
// VLAN tag back in the Ethernet header, cooked headers with the sockaddr_ll.
func TestBuildFrame(t *testing.T) {
	p := textCorpus(t)[7] // udp over Ethernet
	raw := &rawPacket{data: p.data, wireLen: len(p.data), vlanOK: true, vlanTCI: 0x2064, vlanTPID: 0x8100}
	frame, wire := buildFrame(nil, raw, filter.EN10MB)
	if wire != len(p.data)+4 {
		t.Errorf("wire length %d", wire)
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	if !ok || q.VLANIdentifier != 100 || q.Priority != 1 || pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("VLAN frame decodes as %v", pkt)
	}

	// Cooked: the kernel hands over the network-layer packet.
	ipPart := p.data[14:]
	cooked := &rawPacket{data: ipPart, wireLen: len(ipPart), protocol: 0x0800, ifindex: 7, hatype: 1, pkttype: 4, addr: macA}
	frame, wire = buildFrame(nil, cooked, filter.LinuxSLL2)
	pkt = gopacket.NewPacket(frame, layers.LayerTypeLinuxSLL2, gopacket.Default)
	s2, ok := pkt.Layer(layers.LayerTypeLinuxSLL2).(*layers.LinuxSLL2)
	if !ok || s2.InterfaceIndex != 7 || s2.PacketType != 4 || s2.ProtocolType != layers.EthernetTypeIPv4 || !bytes.Equal(s2.Addr, macA) || wire != len(ipPart)+20 || pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("SLL2 frame decodes as %v", pkt)
	}
	frame, _ = buildFrame(nil, cooked, filter.LinuxSLL)
	pkt = gopacket.NewPacket(frame, layers.LayerTypeLinuxSLL, gopacket.Default)
	s1, ok := pkt.Layer(layers.LayerTypeLinuxSLL).(*layers.LinuxSLL)
	if !ok || s1.PacketType != layers.LinuxSLLPacketTypeOutgoing || s1.EthernetType != layers.EthernetTypeIPv4 || !bytes.Equal(s1.Addr, macA) || pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("SLL frame decodes as %v", pkt)
	}
	cooked.vlanOK, cooked.vlanTCI, cooked.vlanTPID = true, 100, 0x8100
	frame, _ = buildFrame(nil, cooked, filter.LinuxSLL)
	pkt = gopacket.NewPacket(frame, layers.LayerTypeLinuxSLL, gopacket.Default)
	if q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || q.VLANIdentifier != 100 || pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("SLL VLAN frame decodes as %v", pkt)
	}
}

// The ring's direct path writes the same blocks as WritePacket, VLAN tag
// put back and -s applied.
func TestPcapngWriteFrameEqualsWritePacket(t *testing.T) {
	p := textCorpus(t)[7]
	ts := time.Unix(1700000000, 5)
	for _, snap := range []int{DefaultSnapLen, 20} {
		var a, b bytes.Buffer
		sa, sb := NewPcapngSink(&a), NewPcapngSink(&b).(*pcapngSink)
		sa.AddInterface(Iface{Name: "eth0", LinkType: filter.EN10MB, SnapLen: snap})
		sb.AddInterface(Iface{Name: "eth0", LinkType: filter.EN10MB, SnapLen: snap})
		raw := &rawPacket{data: p.data, wireLen: len(p.data), sec: 1700000000, nsec: 5, pkttype: 4, vlanOK: true, vlanTCI: 7, vlanTPID: 0x8100}
		frame, wire := buildFrame(nil, raw, filter.EN10MB)
		sa.WritePacket(&Packet{TS: ts, Data: frame[:min(len(frame), snap)], WireLen: wire, Dir: DirOut})
		if err := sb.writeFrame(0, raw, filter.EN10MB, snap); err != nil {
			t.Fatal(err)
		}
		sa.Flush()
		sb.Flush()
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("snap %d: writeFrame wrote\n%x\nWritePacket\n%x", snap, b.Bytes(), a.Bytes())
		}
	}
}
