package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// TPACKET_V3 layout (linux/if_packet.h). A block starts with
// tpacket_block_desc (version, offset_to_priv, then tpacket_hdr_v1); each
// packet with tpacket3_hdr, followed by a sockaddr_ll at TPACKET_ALIGN(48).
const (
	blkStatusOff   = 8
	blkNumPktsOff  = 12
	blkFirstPktOff = 16

	pktNextOff    = 0
	pktSecOff     = 4
	pktNsecOff    = 8
	pktSnaplenOff = 12
	pktLenOff     = 16
	pktStatusOff  = 20
	pktMacOff     = 24
	pktVlanTCIOff = 32
	pktVlanTPOff  = 36
	pktSllOff     = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))

	sllProtocolOff = 2
	sllIfindexOff  = 4
	sllHatypeOff   = 8
	sllPkttypeOff  = 10
	sllHalenOff    = 11
	sllAddrOff     = 12

	// BlockSize, the smallest ring block, holds the largest packet the
	// kernel hands over (a 64 KiB GRO/GSO packet plus headers): TPACKET_V3
	// never splits a packet across blocks, and truncates what does not fit.
	BlockSize = 128 << 10
	// maxBlockSize bounds the blocks of big rings. A ring is cut into 8
	// blocks where it can: the kernel wakes the reader once per block, and
	// at high rates each wakeup (and the Go runtime's thread hand-offs
	// with it) cost more than the packets in a small block.
	maxBlockSize = 1 << 20
	// DefaultRingKiB is -B's default, in KiB as tcpdump's -B: 8 blocks of
	// 512 KiB.
	DefaultRingKiB = 4096
	// blockTimeout is how long the kernel keeps a partly filled block
	// before handing it over: the latency of a quiet capture.
	blockTimeout = 100 // ms
)

// rawPacket is one packet as the kernel handed it over; data points into
// the ring and is valid only until the block is released.
type rawPacket struct {
	sec, nsec uint32 // the kernel's timestamp
	data      []byte // from the link header (SOCK_RAW) or network header (cooked)
	wireLen   int
	ifindex   int
	protocol  uint16 // ethertype, host order
	hatype    uint16
	pkttype   uint8
	addr      []byte
	vlanTCI   uint16
	vlanTPID  uint16
	vlanOK    bool
}

func (p *rawPacket) ts() time.Time { return time.Unix(int64(p.sec), int64(p.nsec)) }

func (p *rawPacket) unixNano() uint64 { return uint64(p.sec)*1e9 + uint64(p.nsec) }

// ringSocket is one AF_PACKET socket with a TPACKET_V3 receive ring.
type ringSocket struct {
	fd   int
	file *os.File        // fd in Go's netpoller: waiting costs no thread
	raw  syscall.RawConn // file's

	ring    []byte
	nblocks int
	bsize   int
	cur     int
	cooked  bool
	closed  bool

	// Kernel counters, accumulated: PACKET_STATISTICS resets on each read.
	recv, drops uint64

	// user, when the kernel refused the filter as too big: the socket
	// passes every packet and this program (for the link type of the
	// frames handed out) filters them here, as libpcap does. userPassed
	// counts the packets it accepted; userLen is its length.
	user       *bpf.VM
	userLen    int
	userPassed uint64
}

// Sockets are opened with protocol 0 (they receive nothing), get the
// reject-all filter and the ring, and are bound only then: no packet
// reaches the ring before the real filter, which replaces the reject-all
// one once the ring is drained (libpcap's order).
var rejectAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

// openRing opens a capture socket inside ns on ifindex (0: every
// interface, as -i any), cooked (SOCK_DGRAM) or with link headers, a ring of
// ringBytes and prog as its filter. If the kernel refuses prog as too big,
// userProg (nil: no fallback) gives the program to run in user space over
// the frames as handed out.
func openRing(ns *nsfs.Netns, ifindex int, cooked bool, ringBytes int, promisc bool, prog []bpf.RawInstruction, userProg func() ([]bpf.RawInstruction, error)) (*ringSocket, error) {
	typ := unix.SOCK_RAW
	if cooked {
		typ = unix.SOCK_DGRAM
	}
	fd, err := enter.Socket(ns, unix.AF_PACKET, typ, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	s := &ringSocket{fd: fd, cooked: cooked}
	if err := s.setup(ifindex, ringBytes, promisc, prog, userProg); err != nil {
		s.close()
		return nil, err
	}
	// Wait for blocks through the runtime's epoll rather than in poll(2):
	// a goroutine parked in a blocking syscall keeps the runtime's monitor
	// thread waking every 20 us, which cost more CPU than the capture.
	if err := unix.SetNonblock(fd, true); err != nil {
		s.close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	s.file = os.NewFile(uintptr(fd), "packet")
	raw, err := s.file.SyscallConn()
	if err != nil {
		s.close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	s.raw = raw
	return s, nil
}

func (s *ringSocket) setup(ifindex, ringBytes int, promisc bool, prog []bpf.RawInstruction, userProg func() ([]bpf.RawInstruction, error)) error {
	if err := attach(s.fd, rejectAll); err != nil {
		return fmt.Errorf("attach reject-all filter: %w", err)
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("TPACKET_V3: %w", err)
	}
	s.bsize = BlockSize
	for s.bsize < maxBlockSize && ringBytes/(2*s.bsize) >= 8 {
		s.bsize *= 2
	}
	s.nblocks = max(ringBytes/s.bsize, 2)
	req := unix.TpacketReq3{
		Block_size:     uint32(s.bsize),
		Block_nr:       uint32(s.nblocks),
		Frame_size:     uint32(s.bsize),
		Frame_nr:       uint32(s.nblocks),
		Retire_blk_tov: blockTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(s.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("packet ring of %d KiB: %w", s.nblocks*s.bsize>>10, err)
	}
	ring, err := unix.Mmap(s.fd, 0, s.nblocks*s.bsize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map packet ring: %w", err)
	}
	s.ring = ring
	if err := unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	if promisc && ifindex > 0 {
		// Like tcpdump without -p; the membership ends with the socket.
		mr := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(s.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			return fmt.Errorf("promiscuous mode: %w", err)
		}
	}
	// Drain whatever the reject-all filter let through (nothing, unless
	// the kernel queued a packet in between) and forget its counters.
	for i := 0; i < s.nblocks; i++ {
		if s.blockStatus(i)&unix.TP_STATUS_USER != 0 {
			s.release(i)
		}
	}
	if _, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return fmt.Errorf("packet statistics: %w", err)
	}
	err = attach(s.fd, prog)
	if err == nil || !tooBig(err, prog) || userProg == nil {
		if err != nil {
			return fmt.Errorf("attach filter: %w", err)
		}
		return nil
	}
	return s.filterInUserSpace(err, userProg)
}

// KernelMaxInsns is BPF_MAXINSNS, the most classic BPF instructions a
// socket filter may have (more: EINVAL).
const KernelMaxInsns = 4096

// tooBig tells whether the kernel refused a filter for its size rather than
// its content. Besides BPF_MAXINSNS, the kernel charges a socket filter,
// once converted to eBPF, to the socket's option memory, bounded by the
// netns's net.core.optmem_max (128 KiB by default since Linux 6.9, 20 KiB
// before): ENOMEM. A load of packet data converts to about 14 eBPF
// instructions (112 bytes), so about 1,160 loads fit in 128 KiB and 180
// in 20 KiB; most other instructions take 8 or 16 bytes.
func tooBig(err error, prog []bpf.RawInstruction) bool {
	return errors.Is(err, unix.ENOMEM) || (errors.Is(err, unix.EINVAL) && len(prog) > KernelMaxInsns)
}

// filterInUserSpace is libpcap's answer to a filter the kernel refuses:
// the socket takes every packet and the program runs here, in
// golang.org/x/net/bpf's VM.
func (s *ringSocket) filterInUserSpace(kerr error, userProg func() ([]bpf.RawInstruction, error)) error {
	refused := func(why any) error {
		return fmt.Errorf("the kernel refuses the filter as too big (%w; net.core.optmem_max) and it cannot run in user space: %v", kerr, why)
	}
	raw, err := userProg()
	if err != nil {
		return refused(err)
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		return refused("x/net/bpf cannot decode it")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		// x/net/bpf runs no ancillary load but the length: on Ethernet,
		// inbound/outbound read the kernel's packet type.
		return refused(fmt.Sprintf("%v (inbound/outbound need the kernel's packet type)", err))
	}
	// Every packet, whole: the user-space program applies -s.
	if err := attach(s.fd, []bpf.RawInstruction{{Op: 0x06, K: 0xffffffff}}); err != nil {
		return fmt.Errorf("attach accept-all filter: %w", err)
	}
	s.user, s.userLen = vm, len(raw)
	return nil
}

func attach(fd int, prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return errors.New("empty filter program")
	}
	ins := make([]unix.SockFilter, len(prog))
	for i, r := range prog {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *ringSocket) block(i int) []byte { return s.ring[i*s.bsize : (i+1)*s.bsize] }

func (s *ringSocket) blockStatus(i int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&s.block(i)[blkStatusOff])))
}

func (s *ringSocket) release(i int) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&s.block(i)[blkStatusOff])), unix.TP_STATUS_KERNEL)
}

// errIfaceGone: the interface the socket is bound to was deleted (or the
// netns with it).
var errIfaceGone = errors.New("interface went away")

// wait blocks until a block is ready or kick is called; ready reports a
// block to read. No timer runs while it waits: each one that fires wakes
// the runtime's monitor thread too.
func (s *ringSocket) wait() (ready bool, err error) {
	if s.blockStatus(s.cur)&unix.TP_STATUS_USER != 0 {
		return true, nil
	}
	var sockErr error
	err = s.raw.Read(func(uintptr) bool {
		if s.blockStatus(s.cur)&unix.TP_STATUS_USER != 0 {
			return true
		}
		// Woken without a block: an error (the interface went away)?
		if serr := s.soError(); serr != 0 {
			sockErr = unix.Errno(serr)
			return true
		}
		return false
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("wait on packet socket: %w", err)
	case sockErr == unix.ENETDOWN || sockErr == unix.ENODEV || sockErr == unix.ENXIO:
		return false, errIfaceGone
	case sockErr != nil:
		return false, fmt.Errorf("packet socket: %w", sockErr)
	}
	return s.blockStatus(s.cur)&unix.TP_STATUS_USER != 0, nil
}

// kick makes wait return now, and at once from then on (the capture is
// stopping, or the interface's target went away). Safe from any goroutine.
func (s *ringSocket) kick() {
	if s.file != nil {
		_ = s.file.SetReadDeadline(time.Unix(1, 0))
	}
}

// readBlock calls fn for every packet of the current block, if the kernel
// has handed it over, then gives the block back. It returns the number of
// packets seen; fn returning false stops early (the block is still
// released: the rest of its packets are not counted as captured).
func (s *ringSocket) readBlock(fn func(*rawPacket) bool) int {
	if s.blockStatus(s.cur)&unix.TP_STATUS_USER == 0 {
		return 0
	}
	b := s.block(s.cur)
	ne := binary.NativeEndian
	n := int(ne.Uint32(b[blkNumPktsOff:]))
	off := int(ne.Uint32(b[blkFirstPktOff:]))
	var p rawPacket
	seen := 0
	for i := 0; i < n && off > 0 && off < len(b); i++ {
		h := b[off:]
		status := ne.Uint32(h[pktStatusOff:])
		mac := int(ne.Uint16(h[pktMacOff:]))
		snap := int(ne.Uint32(h[pktSnaplenOff:]))
		if mac+snap > len(h) {
			break // corrupt: never read past the block
		}
		// Filled in place: a composite literal would zero and copy the
		// whole struct for every packet.
		p.sec, p.nsec = ne.Uint32(h[pktSecOff:]), ne.Uint32(h[pktNsecOff:])
		p.data = h[mac : mac+snap]
		p.wireLen = int(ne.Uint32(h[pktLenOff:]))
		p.protocol = binary.BigEndian.Uint16(h[pktSllOff+sllProtocolOff:])
		p.ifindex = int(int32(ne.Uint32(h[pktSllOff+sllIfindexOff:])))
		p.hatype = ne.Uint16(h[pktSllOff+sllHatypeOff:])
		p.pkttype = h[pktSllOff+sllPkttypeOff]
		p.vlanOK = false
		halen := min(int(h[pktSllOff+sllHalenOff]), 8)
		p.addr = h[pktSllOff+sllAddrOff : pktSllOff+sllAddrOff+halen]
		if status&unix.TP_STATUS_VLAN_VALID != 0 {
			p.vlanOK = true
			p.vlanTCI = uint16(ne.Uint32(h[pktVlanTCIOff:]))
			p.vlanTPID = 0x8100
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				p.vlanTPID = ne.Uint16(h[pktVlanTPOff:])
			}
		}
		seen++
		if !fn(&p) {
			break
		}
		next := int(ne.Uint32(h[pktNextOff:]))
		if next == 0 {
			break
		}
		off += next
	}
	s.release(s.cur)
	s.cur = (s.cur + 1) % s.nblocks
	return seen
}

// stats reads the kernel's counters since the last call and adds them up:
// recv is every packet the filter accepted (the kernel counts the dropped
// ones in it too), drops those the full ring had no room for.
//
// With the filter in user space the kernel's count is of every packet, so
// recv is the packets the program accepted plus the kernel's drops (which
// it could not queue, matching or not: counted as the kernel counts them).
func (s *ringSocket) stats() (recv, drops uint64) {
	if !s.closed {
		if st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			s.recv += uint64(st.Packets)
			s.drops += uint64(st.Drops)
		}
	}
	return s.counts()
}

// counts are the accumulated counters (see stats).
func (s *ringSocket) counts() (recv, drops uint64) {
	if s.user != nil {
		return s.userPassed + s.drops, s.drops
	}
	return s.recv, s.drops
}

func (s *ringSocket) close() {
	if s.closed {
		return
	}
	s.stats()
	s.closed = true
	if s.ring != nil {
		_ = unix.Munmap(s.ring)
		s.ring = nil
	}
	if s.file != nil {
		s.file.Close()
	} else {
		unix.Close(s.fd)
	}
}

// soError reads (and clears) the socket's pending error, as
// getsockopt(SO_ERROR), without entering the scheduler's system call
// state: see rawFile for why.
func (s *ringSocket) soError() int {
	var v int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return int(e)
	}
	return int(v)
}
