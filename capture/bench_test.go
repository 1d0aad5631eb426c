package capture

import (
	"io"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/capture/filter"
)

// The user-space cost of one captured packet: frame rebuilt and written
// as pcapng (the kernel's part is not in it).
func BenchmarkPcapngPacket(b *testing.B) {
	p := textCorpus(b)[7]
	s := NewPcapngSink(io.Discard)
	id, _ := s.AddInterface(Iface{Name: "eth0", LinkType: filter.EN10MB, SnapLen: DefaultSnapLen})
	now := time.Now()
	raw := &rawPacket{data: p.data, wireLen: len(p.data), sec: uint32(now.Unix()), nsec: uint32(now.Nanosecond())}
	buf := make([]byte, 0, BlockSize)
	pkt := &Packet{Iface: id}
	b.ReportAllocs()
	for b.Loop() {
		frame, wire := buildFrame(buf, raw, filter.EN10MB)
		pkt.Data, pkt.WireLen, pkt.TS = frame, wire, raw.ts()
		if err := s.WritePacket(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPcapngFrame(b *testing.B) {
	p := textCorpus(b)[7]
	s := NewPcapngSink(io.Discard).(*pcapngSink)
	id, _ := s.AddInterface(Iface{Name: "eth0", LinkType: filter.EN10MB, SnapLen: DefaultSnapLen})
	now := time.Now()
	raw := &rawPacket{data: p.data, wireLen: len(p.data), sec: uint32(now.Unix()), nsec: uint32(now.Nanosecond())}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.writeFrame(id, raw, filter.EN10MB, DefaultSnapLen); err != nil {
			b.Fatal(err)
		}
	}
}
