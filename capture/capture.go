// Package capture captures packets inside network namespaces: AF_PACKET
// sockets opened by a thread inside the target's netns (through enter),
// each with a TPACKET_V3 ring and a classic BPF filter compiled by
// capture/filter, written as pcapng, pcap or tcpdump-style text. With
// several targets (nsdebug capture --all) every (netns, interface) is one
// interface block of a single pcapng stream.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"

	"github.com/nsdebug/nsdebug/capture/filter"
	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// DefaultSnapLen is tcpdump's: no packet, GRO's 64 KiB ones included, is cut.
const DefaultSnapLen = 262144

// Options say what to capture and where it goes.
type Options struct {
	Iface    string // interface name, "any", or "" (eth0, else the first non-loopback interface)
	Count    int    // stop after this many packets (0: no limit)
	Duration time.Duration
	SnapLen  int
	Filter   string
	// AnyLinkType is the cooked header for -i any: LinuxSLL2 (default) or LinuxSLL.
	AnyLinkType filter.LinkType
	RingKiB     int
	NoPromisc   bool
	Sink        Sink
	// FlushEach flushes the output after every ring block (pipes and
	// terminals: packets go out as they come, as tcpdump -U).
	FlushEach bool
	// Stderr gets the "listening on" line, notes and the counters.
	Stderr io.Writer
	// All: several targets; one that goes away ends its interfaces only.
	All bool
	// Discover, with All, is called every DiscoverEvery for the current
	// set of targets (new ones are added, known ones ignored by netns).
	Discover      func(context.Context) ([]*Target, error)
	DiscoverEvery time.Duration
}

// Target is one netns to capture in.
type Target struct {
	Label       string // docker:web, pod:shop/cart; "" for a single target
	Name        string // the target as the user named it, for messages
	Description string // owners and netns inode, for the interface blocks
	NS          *nsfs.Netns
	// Alive reports whether the target still uses the netns (a stopped
	// container's netns lives on while nsdebug holds it).
	Alive func() bool
}

// Counts are tcpdump's counters for one interface or for all.
type Counts struct {
	Name     string
	Captured uint64
	Received uint64 // received by filter
	Dropped  uint64 // dropped by kernel
}

// Result is what a capture ends with.
type Result struct {
	Total      Counts
	Interfaces []Counts
	Reason     string // why it stopped
}

type iface struct {
	name     string
	id       int
	sock     *ringSocket
	lt       filter.LinkType
	loIndex  int
	captured uint64
	start    time.Time
	ended    bool
	gone     bool // its target went away (--all): the reader ends it
	target   *Target
}

type engine struct {
	opts Options
	ctx  context.Context

	mu       sync.Mutex // sink, counters, ifaces
	ifaces   []*iface
	total    uint64
	byNetns  map[nsfs.ID]bool
	stopOnce sync.Once
	stopped  chan struct{}
	reason   string
	werr     error // a write error that is not a closed pipe
	cpus     int   // GOMAXPROCS before sizeProcs
	// userNoted: the note that a filter runs in user space was printed.
	userNoted bool
	wg        sync.WaitGroup
}

// frameSink is a Sink that encodes a packet straight from the ring.
type frameSink interface {
	writeFrame(iface int, p *rawPacket, lt filter.LinkType, snap int) error
}

// Prepared is a capture whose sockets are open, ready to Run.
type Prepared struct{ e *engine }

// Validate checks the filter's syntax for both link types without any
// privilege, so that a bad filter is a usage error before anything else.
func Validate(expr string, snaplen int) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	_, err := filter.Compile(expr, filter.EN10MB, snaplen)
	return filterError(expr, err)
}

func filterError(expr string, err error) error {
	if err == nil {
		return nil
	}
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		return nserr.New(nserr.ErrUsage, "bad filter at position %d (%q): %s", se.Pos, excerpt(expr, se.Pos), se.Msg)
	}
	return nserr.Wrap(nserr.ErrUsage, err, "bad filter %q", expr)
}

func excerpt(expr string, pos int) string {
	if pos < 0 || pos > len(expr) {
		return expr
	}
	return expr[pos:]
}

// program compiles the socket filter for one socket.
func program(expr string, lt filter.LinkType, cooked bool, snaplen int) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return []bpf.RawInstruction{{Op: 0x06, K: uint32(snaplen)}}, nil // ret #snaplen
	}
	p, err := filter.CompileForSocket(expr, lt, cooked, snaplen)
	return p, filterError(expr, err)
}

// Prepare opens the sockets for targets (one, or the first set of --all).
// Errors are typed: an unknown interface is ErrNotFound and lists the ones
// the netns has.
func Prepare(ctx context.Context, targets []*Target, opts Options) (*Prepared, error) {
	if opts.SnapLen <= 0 {
		opts.SnapLen = DefaultSnapLen
	}
	if opts.RingKiB <= 0 {
		opts.RingKiB = DefaultRingKiB
	}
	if opts.AnyLinkType == 0 {
		opts.AnyLinkType = filter.LinuxSLL2
	}
	if opts.DiscoverEvery <= 0 {
		opts.DiscoverEvery = time.Second
	}
	e := &engine{opts: opts, ctx: ctx, stopped: make(chan struct{}), byNetns: map[nsfs.ID]bool{}}
	for _, t := range targets {
		if err := e.addTarget(t, !opts.All); err != nil {
			if opts.All {
				// One namespace that cannot be read (it exited meanwhile)
				// does not stop the others.
				e.note("%s: %v", t.Label, err)
				continue
			}
			e.closeAll()
			return nil, err
		}
	}
	return &Prepared{e: e}, nil
}

type linkInfo struct {
	name  string
	index int
	ether bool
	up    bool
}

func netnsLinks(ns *nsfs.Netns) ([]linkInfo, error) {
	h, err := enter.NetlinkHandle(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns.ID, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces in %s: %w", ns.ID, err)
	}
	out := make([]linkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, linkInfo{name: a.Name, index: a.Index, ether: a.EncapType == "ether" || a.EncapType == "loopback", up: a.Flags&1 != 0 || a.OperState == netlink.OperUp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out, nil
}

// pick chooses the interfaces to capture on in one netns.
func (e *engine) pick(t *Target, links []linkInfo, strict bool) ([]linkInfo, error) {
	want := e.opts.Iface
	if want == "any" {
		return []linkInfo{{name: "any"}}, nil
	}
	if e.opts.All && want == "" {
		// One link type for the whole file: readers built on libpcap
		// (tcpdump) refuse a pcapng whose interfaces differ in it.
		var out []linkInfo
		for _, l := range links {
			switch {
			case l.name == "lo":
			case !l.ether:
				e.note("%s/%s is not an Ethernet interface: left out (use -i any for every interface)", t.Label, l.name)
			default:
				out = append(out, l)
			}
		}
		return out, nil
	}
	if want == "" {
		for _, l := range links {
			if l.name == "eth0" {
				return []linkInfo{l}, nil
			}
		}
		for _, l := range links {
			if l.name != "lo" && l.up {
				return []linkInfo{l}, nil
			}
		}
		return []linkInfo{{name: "any"}}, nil
	}
	for _, l := range links {
		if l.name == want {
			return []linkInfo{l}, nil
		}
	}
	if !strict {
		return nil, nil
	}
	names := make([]string, 0, len(links)+1)
	for _, l := range links {
		names = append(names, l.name)
	}
	names = append(names, "any")
	return nil, nserr.New(nserr.ErrNotFound, "no interface %q in %s (%s); it has: %s", want, where(t), t.NS.ID, strings.Join(names, ", "))
}

func where(t *Target) string {
	switch {
	case t.Label != "":
		return t.Label
	case t.Name != "":
		return t.Name
	}
	return "the target's network namespace"
}

// addTarget opens a socket per chosen interface of t. Not under e.mu for
// the socket work; the interfaces are registered under it.
func (e *engine) addTarget(t *Target, strict bool) error {
	links, err := netnsLinks(t.NS)
	if err != nil {
		return err
	}
	chosen, err := e.pick(t, links, strict)
	if err != nil {
		return err
	}
	lo := 0
	names := map[int]string{}
	for _, l := range links {
		names[l.index] = l.name
		if l.name == "lo" {
			lo = l.index
		}
	}
	var opened []*iface
	fail := func(err error) error {
		for _, f := range opened {
			f.sock.close()
		}
		return err
	}
	for _, l := range chosen {
		cooked := l.name == "any" || !l.ether
		lt := filter.EN10MB
		if cooked {
			lt = e.opts.AnyLinkType
		}
		prog, err := program(e.opts.Filter, lt, cooked, e.opts.SnapLen)
		if err != nil {
			return fail(err)
		}
		userProg := func() ([]bpf.RawInstruction, error) {
			// For the frames as handed out: link header rebuilt, VLAN
			// tags back (libpcap runs its user-space filter there too).
			return filter.Compile(e.opts.Filter, lt, e.opts.SnapLen)
		}
		sock, err := openRing(t.NS, l.index, cooked, e.opts.RingKiB<<10, !e.opts.NoPromisc, prog, userProg)
		if err != nil {
			if errors.Is(err, syscall.EPERM) {
				return fail(nserr.Wrap(nserr.ErrPermission, err, "capture on %s", l.name))
			}
			return fail(fmt.Errorf("capture on %s in %s: %w", l.name, t.NS.ID, err))
		}
		name := l.name
		if t.Label != "" {
			name = t.Label + "/" + l.name
		}
		if sock.user != nil && !e.userNoted {
			e.userNoted = true
			e.note("%s: the filter's program (%d instructions) is too big for the kernel (net.core.optmem_max of %s): filtering in user space, as libpcap does", name, len(prog), t.NS.ID)
		}
		opened = append(opened, &iface{name: name, sock: sock, lt: lt, loIndex: lo, target: t, start: time.Now()})
		_ = names
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byNetns[t.NS.ID] = true
	for i, f := range opened {
		id, err := e.opts.Sink.AddInterface(Iface{
			Name: f.name, Description: describe(t, chosen[i].name), LinkType: f.lt, SnapLen: e.opts.SnapLen,
			Filter: e.opts.Filter, Index: chosen[i].index, Names: names,
		})
		if err != nil {
			for _, g := range opened[i:] {
				g.sock.close()
			}
			return e.writeError(err)
		}
		f.id = id
		e.ifaces = append(e.ifaces, f)
		if e.opts.Stderr != nil {
			fmt.Fprintf(e.opts.Stderr, "nsdebug: listening on %s in %s (%s), link-type %s, snapshot length %d bytes\n",
				f.name, labelOr(t), t.NS.ID, ltName(f.lt), e.opts.SnapLen)
		}
	}
	return nil
}

func labelOr(t *Target) string { return where(t) }

func describe(t *Target, ifname string) string {
	d := fmt.Sprintf("%s in netns %s", ifname, t.NS.ID)
	if t.Description != "" {
		d += " (" + t.Description + ")"
	}
	return d
}

func ltName(lt filter.LinkType) string {
	switch lt {
	case filter.EN10MB:
		return "EN10MB (Ethernet)"
	case filter.LinuxSLL:
		return "LINUX_SLL (Linux cooked v1)"
	case filter.LinuxSLL2:
		return "LINUX_SLL2 (Linux cooked v2)"
	}
	return lt.String()
}

func (e *engine) writeError(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return err
	}
	return fmt.Errorf("write capture: %w", err)
}

// signalDrain is how long a capture reads on after SIGINT or SIGTERM: one
// block timeout, and some scheduling slack.
const signalDrain = (blockTimeout + 50) * time.Millisecond

func (e *engine) stop(reason string) {
	e.stopOnce.Do(func() {
		e.reason = reason
		close(e.stopped)
	})
}

// Run captures until a stop condition, then ends every interface (its
// counters in the output), flushes and closes everything. The returned
// error is nil for every ordinary stop (count, duration, signal, a closed
// pipe, a netns that went away).
func (p *Prepared) Run() (*Result, error) {
	e := p.e
	if e.opts.Duration > 0 {
		t := time.AfterFunc(e.opts.Duration, func() { e.stop("duration") })
		defer t.Stop()
	}
	go func() {
		select {
		case <-e.ctx.Done():
			// What the kernel took before the signal may still be in a
			// ring block it has not handed over: it hands over a partly
			// filled block only after blockTimeout. Read on that long, so
			// that it is written and counted as captured too.
			select {
			case <-time.After(signalDrain):
			case <-e.stopped:
			}
			e.stop("signal")
		case <-e.stopped:
		}
		// The readers wait without a timeout: wake them to see the stop.
		e.mu.Lock()
		for _, f := range e.ifaces {
			if !f.ended {
				f.sock.kick()
			}
		}
		e.mu.Unlock()
	}()
	e.mu.Lock()
	for _, f := range e.ifaces {
		e.start(f)
	}
	e.sizeProcs()
	e.mu.Unlock()
	if e.opts.All && e.opts.Discover != nil {
		e.wg.Add(1)
		go e.discoverLoop()
	}
	if !e.opts.All {
		e.wg.Add(1)
		go e.aliveLoop()
	}
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	res := &Result{Reason: e.reason}
	for _, f := range e.ifaces {
		e.end(f)
		recv, drop := f.sock.counts()
		res.Interfaces = append(res.Interfaces, Counts{Name: f.name, Captured: f.captured, Received: recv, Dropped: drop})
		res.Total.Captured += f.captured
		res.Total.Received += recv
		res.Total.Dropped += drop
	}
	if err := e.opts.Sink.Flush(); err != nil && e.werr == nil && !errors.Is(err, syscall.EPIPE) {
		e.werr = fmt.Errorf("write capture: %w", err)
	}
	return res, e.werr
}

// sizeProcs gives the Go scheduler as many Ps as there are sockets to read
// (at most the CPUs it would use anyway), unless GOMAXPROCS is set. Each
// reader is one goroutine that sleeps in the netpoller between ring
// blocks; with idle Ps to spare, every wakeup also wakes a spinning
// thread looking for work that is not there (futex hand-offs, about a
// tenth of a one-socket capture's CPU). Under e.mu.
func (e *engine) sizeProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if e.cpus == 0 {
		e.cpus = runtime.GOMAXPROCS(0)
	}
	n := 0
	for _, f := range e.ifaces {
		if !f.ended {
			n++
		}
	}
	if want := min(max(n, 1), e.cpus); want != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(want)
	}
}

// end writes f's statistics block and closes its socket (under e.mu, by
// f's reader or once every reader has returned).
func (e *engine) end(f *iface) {
	if f.ended {
		return
	}
	f.ended = true
	f.sock.close()
	recv, drop := f.sock.counts()
	if err := e.opts.Sink.EndInterface(f.id, IfaceStats{Start: f.start, End: time.Now(), Recv: recv, Drop: drop}); err != nil && e.werr == nil && !errors.Is(err, syscall.EPIPE) {
		e.werr = fmt.Errorf("write capture: %w", err)
	}
}

func (e *engine) note(format string, args ...any) {
	if e.opts.Stderr != nil {
		fmt.Fprintf(e.opts.Stderr, "nsdebug: note: "+format+"\n", args...)
	}
}

func (e *engine) start(f *iface) {
	e.wg.Add(1)
	go e.read(f)
}

// read is one interface's loop: wait for a block, write its packets.
func (e *engine) read(f *iface) {
	defer e.wg.Done()
	buf := make([]byte, 0, BlockSize)
	pkt := &Packet{Iface: f.id}
	snap := e.opts.SnapLen
	fast, _ := e.opts.Sink.(frameSink)
	user := f.sock.user
	for {
		select {
		case <-e.stopped:
			return
		default:
		}
		e.mu.Lock()
		if f.gone {
			// Only this goroutine touches the socket's fd and ring: the
			// end (and close) happens here, never under its feet.
			e.note("%s went away; its capture ended", f.name)
			e.end(f)
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		ready, err := f.sock.wait()
		if err != nil {
			e.mu.Lock()
			if errors.Is(err, errIfaceGone) {
				e.note("%s went away; its capture ended", f.name)
			} else {
				e.note("%s: %v; its capture ended", f.name, err)
			}
			e.end(f)
			e.mu.Unlock()
			if !e.opts.All {
				e.stop("interface gone")
			}
			return
		}
		if !ready {
			continue
		}
		e.mu.Lock()
		f.sock.readBlock(func(p *rawPacket) bool {
			var frame []byte
			if user != nil {
				// Before the loopback skip, so that received by filter
				// counts what the kernel's filter would have passed.
				frame, pkt.WireLen = buildFrame(buf, p, f.lt)
				keep, err := user.Run(frame)
				if err != nil || keep == 0 {
					return true // rejected: not captured, not counted
				}
				f.sock.userPassed++
				frame = frame[:min(len(frame), keep)]
			}
			if p.pkttype == 4 && p.ifindex == f.loIndex && f.loIndex != 0 {
				return true // loopback's outgoing copy: libpcap skips it too
			}
			var err error
			if fast != nil && user == nil {
				err = fast.writeFrame(f.id, p, f.lt, snap)
			} else {
				if user == nil {
					frame, pkt.WireLen = buildFrame(buf, p, f.lt)
				}
				if len(frame) > snap {
					frame = frame[:snap]
				}
				pkt.Data, pkt.TS, pkt.Dir, pkt.IfIndex, pkt.Pkttype = frame, p.ts(), direction(p.pkttype), p.ifindex, p.pkttype
				err = e.opts.Sink.WritePacket(pkt)
			}
			if err != nil {
				e.failWrite(err)
				return false
			}
			f.captured++
			e.total++
			if e.opts.Count > 0 && e.total >= uint64(e.opts.Count) {
				e.stop("count")
				return false
			}
			return true
		})
		if e.opts.FlushEach {
			if err := e.opts.Sink.Flush(); err != nil {
				e.failWrite(err)
			}
		}
		e.mu.Unlock()
	}
}

// failWrite stops the capture on a write error (under e.mu); a closed pipe
// (Wireshark or head went away) is an ordinary stop.
func (e *engine) failWrite(err error) {
	if errors.Is(err, syscall.EPIPE) {
		e.stop("pipe closed")
		return
	}
	if e.werr == nil {
		e.werr = fmt.Errorf("write capture: %w", err)
	}
	e.stop("write error")
}

// aliveLoop ends a single-target capture when its target goes away.
func (e *engine) aliveLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case <-tick.C:
		}
		e.mu.Lock()
		var gone *Target
		for _, f := range e.ifaces {
			if f.target.Alive != nil && !f.target.Alive() {
				gone = f.target
				break
			}
		}
		e.mu.Unlock()
		if gone != nil {
			e.note("the target's network namespace (%s) went away; capture ended", gone.NS.ID)
			e.stop("netns gone")
			return
		}
	}
}

// discoverLoop (--all) adds new targets and ends the interfaces of those
// that went away.
func (e *engine) discoverLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(e.opts.DiscoverEvery)
	defer tick.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case <-tick.C:
		}
		e.mu.Lock()
		for _, f := range e.ifaces {
			if !f.ended && f.target.Alive != nil && !f.target.Alive() {
				f.gone = true
				f.sock.kick()
			}
		}
		e.mu.Unlock()
		ts, err := e.opts.Discover(e.ctx)
		if err != nil {
			e.note("listing namespaces: %v", err)
			continue
		}
		for _, t := range ts {
			e.mu.Lock()
			known := e.byNetns[t.NS.ID]
			e.mu.Unlock()
			if known {
				t.NS.Close()
				continue
			}
			select {
			case <-e.stopped:
				t.NS.Close()
				return
			default:
			}
			n := len(e.ifaces)
			if err := e.addTarget(t, false); err != nil {
				e.note("%s: %v", t.Label, err)
				continue
			}
			e.mu.Lock()
			for _, f := range e.ifaces[n:] {
				e.start(f)
			}
			e.sizeProcs()
			e.mu.Unlock()
		}
	}
}

// closeAll releases the sockets of a capture that never ran.
func (e *engine) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.ifaces {
		f.sock.close()
	}
}

// Close releases a prepared capture that will not Run.
func (p *Prepared) Close() { p.e.closeAll() }

// PrintCounts writes tcpdump's counters (per interface first with --all).
func PrintCounts(w io.Writer, r *Result, perIface bool) {
	if perIface {
		for _, c := range r.Interfaces {
			fmt.Fprintf(w, "%s: %d captured, %d received by filter, %d dropped by kernel\n", c.Name, c.Captured, c.Received, c.Dropped)
		}
	}
	fmt.Fprintf(w, "%d packet%s captured\n%d packet%s received by filter\n%d packet%s dropped by kernel\n",
		r.Total.Captured, plural(r.Total.Captured), r.Total.Received, plural(r.Total.Received), r.Total.Dropped, plural(r.Total.Dropped))
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
