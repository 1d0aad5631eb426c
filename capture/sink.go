package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nsdebug/nsdebug/capture/filter"
	"github.com/nsdebug/nsdebug/internal/version"
)

// Iface is one capture interface as the output shows it.
type Iface struct {
	Name        string // eth0, or docker:web/eth0 with --all
	Description string
	LinkType    filter.LinkType
	SnapLen     int
	Filter      string
	// Index is the interface's ifindex inside its netns, and LoIndex that
	// netns's loopback (cooked captures name interfaces by ifindex).
	Index int
	Names map[int]string // ifindex -> name in this netns (for -i any text)
}

// Packet is one captured packet ready for output.
type Packet struct {
	Iface   int // what AddInterface returned
	TS      time.Time
	Data    []byte // link-layer frame, valid only during the call
	WireLen int
	Dir     Direction
	IfIndex int // the kernel's ifindex (for -i any)
	Pkttype uint8
}

// IfaceStats are the counters written at the end of an interface.
type IfaceStats struct {
	Start, End time.Time
	Recv, Drop uint64
}

// Sink is where packets go: a pcapng or pcap file, or text lines.
type Sink interface {
	AddInterface(Iface) (int, error)
	WritePacket(*Packet) error
	// EndInterface records an interface's final counters (pcapng
	// interface statistics blocks).
	EndInterface(id int, st IfaceStats) error
	Flush() error
}

// Format names an output file format.
type Format string

// Output formats.
const (
	FormatPcapng Format = "pcapng"
	FormatPcap   Format = "pcap"
)

// pcapngSink writes one section with an interface block per capture
// interface; interfaces may be added at any point (--all).
type pcapngSink struct {
	w   io.Writer
	out []byte // what is not written yet; packets are encoded straight into it
	ng  *pcapgo.NgWriter
	ids int
	opt pcapgo.NgWriterOptions
}

// sinkBuffer is how much output is gathered before one write(2).
const sinkBuffer = 256 << 10

// Write takes pcapgo's blocks into the same buffer as the packets.
func (s *pcapngSink) Write(b []byte) (int, error) {
	s.out = append(s.out, b...)
	return len(b), nil
}

func (s *pcapngSink) maybeFlush() error {
	if len(s.out) < sinkBuffer {
		return nil
	}
	return s.Flush()
}

// NewPcapngSink writes pcapng to w. pcapgo writes the section header and
// the interface and statistics blocks (each flushed into bw at once, so
// blocks stay in order); packet blocks are encoded here in one piece: the
// per-packet path is the capture's hot loop.
func NewPcapngSink(w io.Writer) Sink {
	return &pcapngSink{w: fastWriter(w), out: make([]byte, 0, sinkBuffer+BlockSize), opt: pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		OS:          runtime.GOOS,
		Application: "nsdebug " + version.Version,
	}}}
}

func (s *pcapngSink) AddInterface(i Iface) (int, error) {
	intf := pcapgo.NgInterface{
		Name:                i.Name,
		Description:         i.Description,
		Filter:              i.Filter,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkType(i.LinkType),
		SnapLength:          uint32(i.SnapLen),
		TimestampResolution: 9,
	}
	if s.ng == nil {
		ng, err := pcapgo.NewNgWriterInterface(s, intf, s.opt)
		if err != nil {
			return 0, err
		}
		s.ng = ng
		s.ids = 1
		return 0, ng.Flush()
	}
	id, err := s.ng.AddInterface(intf)
	if err != nil {
		return 0, err
	}
	s.ids = id + 1
	return id, s.ng.Flush()
}

// Enhanced packet block (pcapng spec 4.3) with one option, epb_flags.
const (
	epbType       = 6
	epbOptFlags   = 2
	epbFixedLen   = 28 + 8 + 4 + 4 // header, flags option, end of options, trailing length
	epbInbound    = 1
	epbOutbound   = 2
	epbFlagsValue = 4
)

func (s *pcapngSink) WritePacket(p *Packet) error {
	if p.Iface < 0 || p.Iface >= s.ids {
		return fmt.Errorf("packet for unknown interface %d", p.Iface)
	}
	start := len(s.out)
	s.out = append(s.out, make([]byte, 28)...)
	s.out = append(s.out, p.Data...)
	s.finishEPB(start, p.Iface, uint64(p.TS.UnixNano()), p.WireLen, p.Dir)
	return s.maybeFlush()
}

// writeFrame is WritePacket for a packet still in the ring: the frame is
// built straight into the output (one copy instead of three).
func (s *pcapngSink) writeFrame(iface int, p *rawPacket, lt filter.LinkType, snap int) error {
	if iface < 0 || iface >= s.ids {
		return fmt.Errorf("packet for unknown interface %d", iface)
	}
	// Room for the header, the frame with any rebuilt header and the
	// block's tail, so that buildFrame appends in place.
	s.out = slices.Grow(s.out, 28+len(p.data)+sll2Len+vlanLen+16)
	start := len(s.out)
	s.out = append(s.out, make([]byte, 28)...)
	frame, wire := buildFrame(s.out[len(s.out):], p, lt)
	s.out = s.out[:len(s.out)+min(len(frame), snap)]
	s.finishEPB(start, iface, p.unixNano(), wire, direction(p.pkttype))
	return s.maybeFlush()
}

// finishEPB fills in the block header before the data at s.out[start+28:]
// and appends padding, the epb_flags option and the trailer.
func (s *pcapngSink) finishEPB(start, iface int, nanos uint64, wire int, d Direction) {
	caplen := len(s.out) - start - 28
	pad := (4 - caplen&3) & 3
	total := epbFixedLen + caplen + pad
	le := binary.LittleEndian
	h := s.out[start:]
	le.PutUint32(h[0:], epbType)
	le.PutUint32(h[4:], uint32(total))
	le.PutUint32(h[8:], uint32(iface))
	le.PutUint32(h[12:], uint32(nanos>>32))
	le.PutUint32(h[16:], uint32(nanos))
	le.PutUint32(h[20:], uint32(caplen))
	le.PutUint32(h[24:], uint32(wire))
	b := append(s.out, 0, 0, 0, 0)[:len(s.out)+pad]
	dir := uint32(epbInbound)
	if d == DirOut {
		dir = epbOutbound
	}
	b = le.AppendUint16(b, epbOptFlags)
	b = le.AppendUint16(b, epbFlagsValue)
	b = le.AppendUint32(b, dir)
	b = le.AppendUint32(b, 0) // opt_endofopt
	b = le.AppendUint32(b, uint32(total))
	s.out = b
}

func (s *pcapngSink) EndInterface(id int, st IfaceStats) error {
	if s.ng == nil {
		return nil
	}
	if err := s.ng.WriteInterfaceStats(id, pcapgo.NgInterfaceStatistics{
		LastUpdate: st.End, StartTime: st.Start, EndTime: st.End,
		PacketsReceived: st.Recv, PacketsDropped: st.Drop,
	}); err != nil {
		return err
	}
	return s.ng.Flush()
}

func (s *pcapngSink) Flush() error {
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.w.Write(s.out)
	s.out = s.out[:0]
	return err
}

// pcapSink writes classic pcap (microsecond timestamps, as tcpdump -w):
// one link type, one interface.
type pcapSink struct {
	bw     *bufio.Writer
	w      *pcapgo.Writer
	header bool
}

// NewPcapSink writes pcap to w.
func NewPcapSink(w io.Writer) Sink {
	bw := bufio.NewWriterSize(fastWriter(w), 256<<10)
	return &pcapSink{bw: bw, w: pcapgo.NewWriter(bw)}
}

func (s *pcapSink) AddInterface(i Iface) (int, error) {
	if s.header {
		return 0, fmt.Errorf("a pcap file holds one interface (use --format pcapng)")
	}
	s.header = true
	return 0, s.w.WriteFileHeader(uint32(i.SnapLen), layers.LinkType(i.LinkType))
}

func (s *pcapSink) WritePacket(p *Packet) error {
	return s.w.WritePacket(gopacket.CaptureInfo{Timestamp: p.TS, CaptureLength: len(p.Data), Length: p.WireLen}, p.Data)
}

func (s *pcapSink) EndInterface(int, IfaceStats) error { return nil }

func (s *pcapSink) Flush() error { return s.bw.Flush() }
