package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/capture"
	"github.com/nsdebug/nsdebug/capture/filter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newCaptureCmd) }

type captureOptions struct {
	Target    string
	Filter    string
	Iface     string
	Count     int
	Duration  time.Duration
	SnapLen   int
	Write     string
	Format    string
	LinkType  string
	RingKiB   int
	All       bool
	Host      bool
	NoPromisc bool
	Flush     bool
	// StopOnStdinEOF (hidden, for kubectl-nsdebug's helper): stdin's end
	// stops the capture as SIGINT does. Signals cannot be sent over
	// pods/exec; closing its stdin can.
	StopOnStdinEOF bool
}

func newCaptureCmd(env *Env) *cobra.Command {
	opts := captureOptions{}
	c := &cobra.Command{
		Use:   "capture TARGET [FILTER EXPRESSION...] | capture --all [FILTER EXPRESSION...]",
		Short: "Capture packets in a target's netns (or in every container's at once) with no tcpdump anywhere",
		Long: `capture is a packet capturer in nsdebug itself: AF_PACKET sockets opened by a
thread inside the target's network namespace, a TPACKET_V3 ring per socket,
and the pcap-filter expression (tcpdump's syntax) compiled by nsdebug to
classic BPF and attached in the kernel.

Without -w, one line per packet in tcpdump's -nn -S style (time, interface,
direction, protocol, addresses and ports, TCP flags, length). With -w FILE or
-w -, pcapng (or pcap with --format pcap); -i any uses Linux cooked headers,
SLL2 by default, SLL v1 with --linktype sll. Packets are flushed as they come
when the output is a pipe (wireshark -k -i -, tcpdump -r -).

--all captures in every container's and pod's netns on the host, also those
that appear while it runs (--host adds the host's own), into one pcapng
stream: one interface block per (netns, interface), named docker:web/eth0 or
pod:shop/cart/eth0, described with the netns inode and owners. Without -i,
--all takes every interface but lo.

It stops on -c, --duration, SIGINT, SIGTERM, a closed pipe, or the target's
netns going away (a note, not an error); the file is always complete. On
exit, tcpdump's counters on stderr (per interface with --all, and in the
pcapng interface statistics blocks).`,
		Example: `  nsdebug capture web
  nsdebug capture web -i any -c 100 'tcp port 80 and (tcp[tcpflags] & tcp-syn) != 0'
  nsdebug capture pod:shop/cart -w - | wireshark -k -i -
  nsdebug capture --all --duration 30s -w all.pcapng udp port 53`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.setArgs(args); err != nil {
				return err
			}
			return runCapture(cmd, env, opts)
		},
	}
	f := c.Flags()
	f.SetInterspersed(true)
	f.StringVarP(&opts.Iface, "interface", "i", "", "interface inside the netns, or any (default eth0, else the first non-loopback interface)")
	f.IntVarP(&opts.Count, "count", "c", 0, "stop after this many packets")
	f.DurationVar(&opts.Duration, "duration", 0, "stop after this long (e.g. 30s)")
	f.IntVarP(&opts.SnapLen, "snaplen", "s", capture.DefaultSnapLen, "bytes kept of each packet")
	f.StringVarP(&opts.Write, "write", "w", "", "write packets to FILE (- for stdout) instead of text lines")
	f.StringVar(&opts.Format, "format", "pcapng", "file format with -w: pcapng or pcap")
	f.StringVar(&opts.LinkType, "linktype", "sll2", "cooked header for -i any: sll2 or sll")
	f.IntVarP(&opts.RingKiB, "buffer-size", "B", capture.DefaultRingKiB, "kernel ring per socket, in KiB (as tcpdump's -B)")
	f.BoolVar(&opts.All, "all", false, "capture in every container's and pod's netns (new ones too)")
	f.BoolVar(&opts.Host, "host", false, "with --all: the host's own netns too")
	f.BoolVarP(&opts.NoPromisc, "no-promiscuous-mode", "p", false, "do not put the interface into promiscuous mode")
	f.BoolVarP(&opts.Flush, "packet-buffered", "U", false, "flush the output after every ring block even to a regular file")
	f.BoolVar(&opts.StopOnStdinEOF, "stop-on-stdin-eof", false, "stop, as on SIGINT, when stdin ends (kubectl-nsdebug's Ctrl-C)")
	_ = f.MarkHidden("stop-on-stdin-eof")
	// The target first; the filter expression after it is free text.
	c.ValidArgsFunction = targetThen(env, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	})
	_ = c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]cobra.Completion{"pcapng", "pcap"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("linktype", cobra.FixedCompletions([]cobra.Completion{"sll2", "sll"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// setArgs splits the positional words: TARGET (unless --all), then the
// filter expression, as tcpdump takes it (words joined by spaces).
func (o *captureOptions) setArgs(args []string) error {
	if !o.All {
		if len(args) == 0 {
			return nserr.New(nserr.ErrUsage, "capture takes TARGET (or --all) and an optional filter expression; see 'nsdebug capture --help'")
		}
		o.Target, args = args[0], args[1:]
	}
	o.Filter = strings.Join(args, " ")
	return o.check()
}

func (o *captureOptions) check() error {
	switch {
	case o.Count < 0:
		return nserr.New(nserr.ErrUsage, "-c must be a positive number of packets (got %d)", o.Count)
	case o.Duration < 0:
		return nserr.New(nserr.ErrUsage, "--duration must be positive (got %s)", o.Duration)
	case o.SnapLen <= 0 || o.SnapLen > capture.DefaultSnapLen:
		return nserr.New(nserr.ErrUsage, "-s must be between 1 and %d (got %d)", capture.DefaultSnapLen, o.SnapLen)
	case o.RingKiB < 2*capture.BlockSize>>10:
		return nserr.New(nserr.ErrUsage, "-B must be at least %d KiB (two %d KiB ring blocks; got %d)", 2*capture.BlockSize>>10, capture.BlockSize>>10, o.RingKiB)
	case o.Format != "pcapng" && o.Format != "pcap":
		return nserr.New(nserr.ErrUsage, "--format must be pcapng or pcap (got %q)", o.Format)
	case o.LinkType != "sll2" && o.LinkType != "sll":
		return nserr.New(nserr.ErrUsage, "--linktype must be sll2 or sll (got %q)", o.LinkType)
	case o.Host && !o.All:
		return nserr.New(nserr.ErrUsage, "--host goes with --all")
	case o.All && o.Write != "" && o.Format == "pcap":
		return nserr.New(nserr.ErrUsage, "--all writes one interface block per netns and interface: use pcapng (a pcap file holds one interface)")
	}
	return capture.Validate(o.Filter, o.SnapLen)
}

func runCapture(cmd *cobra.Command, env *Env, opts captureOptions) error {
	ctx := cmd.Context()
	if opts.StopOnStdinEOF {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		go func() {
			_, _ = io.Copy(io.Discard, env.IO.In)
			stop()
		}()
	}
	anyLT := filter.LinuxSLL2
	if opts.LinkType == "sll" {
		anyLT = filter.LinuxSLL
	}
	var targets []*capture.Target
	var discover func(context.Context) ([]*capture.Target, error)
	if opts.All {
		if err := requireRoot(env); err != nil {
			return err
		}
		d := capture.Discoverer(env.Resolver(), opts.Host)
		ts, err := d(ctx)
		if err != nil {
			return err
		}
		targets = ts
		discover = d
	} else {
		t, err := resolver.ParseTarget(opts.Target)
		if err != nil {
			return err
		}
		res, err := env.resolveTarget(ctx, t)
		if err != nil {
			return err
		}
		defer res.Close()
		targets = []*capture.Target{capture.FromResult(res, env.Resolver().ProcRoot())}
	}
	defer func() {
		if opts.All {
			for _, t := range targets {
				t.NS.Close()
			}
		}
	}()

	// A closed pipe must be an EPIPE write error, not a silent death by
	// SIGPIPE: the counters still get printed.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	out, flushEach, closeOut, err := openOutput(env, opts)
	if err != nil {
		return err
	}
	var sink capture.Sink
	switch {
	case opts.Write == "":
		sink = capture.NewTextSink(out)
	case opts.Format == "pcap":
		sink = capture.NewPcapSink(out)
	default:
		sink = capture.NewPcapngSink(out)
	}
	copts := capture.Options{
		Iface: opts.Iface, Count: opts.Count, Duration: opts.Duration, SnapLen: opts.SnapLen,
		Filter: opts.Filter, AnyLinkType: anyLT, RingKiB: opts.RingKiB, NoPromisc: opts.NoPromisc,
		Sink: sink, FlushEach: flushEach || opts.Flush, Stderr: env.IO.ErrOut, All: opts.All,
	}
	copts.Discover = discover
	p, err := capture.Prepare(ctx, targets, copts)
	if err != nil {
		_ = closeOut(true)
		return err
	}
	res, err := p.Run()
	if cerr := closeOut(false); cerr != nil && err == nil && !errors.Is(cerr, syscall.EPIPE) {
		err = fmt.Errorf("close %s: %w", opts.Write, cerr)
	}
	if res != nil {
		if res.Reason == "pipe closed" {
			fmt.Fprintln(env.IO.ErrOut, "nsdebug: note: the output pipe was closed; capture ended")
		}
		capture.PrintCounts(env.IO.ErrOut, res, opts.All)
	}
	return err
}

// openOutput opens -w's file (or stdout). flushEach: the output is a pipe
// or terminal, where packets must go out as they come. closeOut(failed)
// removes a file that a failed command created.
func openOutput(env *Env, opts captureOptions) (w io.Writer, flushEach bool, closeOut func(failed bool) error, err error) {
	if opts.Write == "" || opts.Write == "-" {
		flushEach = true
		if f, ok := env.IO.Out.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				flushEach = false
			}
		}
		return env.IO.Out, flushEach, func(bool) error { return nil }, nil
	}
	_, statErr := os.Stat(opts.Write)
	existed := statErr == nil
	f, err := os.OpenFile(opts.Write, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, false, nil, nserr.Wrap(nserr.ErrUsage, err, "cannot write %s", opts.Write)
	}
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		flushEach = true // a FIFO
	}
	return f, flushEach, func(failed bool) error {
		err := f.Close()
		if failed && !existed {
			os.Remove(opts.Write)
		}
		return err
	}, nil
}
