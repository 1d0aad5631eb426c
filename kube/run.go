package kube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// remoteArgv is the nsdebug command line run in the helper for target (a
// pod:NS/NAME[/CTR] target, or "" for node commands).
func (k *client) remoteArgv(iv invocation, target string) []string {
	argv := []string{"nsdebug", "--cri-endpoint", "kubelet", iv.sub}
	sub := iv.sub
	pass := iv.pass
	if k.o.HostTools && (sub == "exec" || sub == "shell") {
		// The command runs in a private copy of the node's mount namespace
		// (nsdebug exec --node-root: the kubelet's, else PID 1's): its
		// binaries, libraries and files are the node's, with the pod's
		// /sys/class/net, resolv.conf and hosts laid over them as for any
		// exec. A shell is the node's /bin/sh (the helper's $SHELL means
		// nothing there).
		argv[3] = "exec"
		argv = append(argv, "--node-root")
		if sub == "shell" {
			pass = append(append([]string{}, pass...), "--", "/bin/sh", "-i")
		}
	}
	if sub == "whois" {
		argv = append(argv, iv.thing)
	}
	if sub == "capture" {
		// Signals cannot cross pods/exec, closing stdin can: the plugin's
		// Ctrl-C ends the capture as a local one would (see stoppable).
		argv = append(argv, "--stop-on-stdin-eof")
	}
	if target != "" {
		argv = append(argv, target)
	}
	return append(argv, pass...)
}

// sysctlWrites: a sysctl command line with KEY=VALUE needs a privileged
// helper (see HelperPod).
func sysctlWrites(iv invocation) bool {
	if iv.sub != "sysctl" {
		return false
	}
	for _, a := range iv.pass {
		if !strings.HasPrefix(a, "-") && strings.Contains(a, "=") {
			return true
		}
	}
	return false
}

// single runs one command on one node.
func (k *client) single(ctx context.Context, iv invocation, st Streams) error {
	errOut = st.ErrOut
	if k.o.HostTools && !iv.execStyle() {
		return nserr.New(nserr.ErrUsage, "--host-tools is for exec and shell (the other commands are nsdebug's own)")
	}
	var node string
	var ref *podRef
	switch {
	case nodeCommands[iv.sub] && k.o.Node != "":
		node = k.o.Node
	case strings.HasPrefix(iv.target, "node/") || strings.HasPrefix(iv.target, "nodes/"):
		_, node, _ = strings.Cut(iv.target, "/")
	default:
		r, err := k.parsePodRef(iv.target)
		if err != nil {
			return err
		}
		pod, err := k.getPod(ctx, r)
		if err != nil {
			return err
		}
		node, ref = pod.Spec.NodeName, &r
	}
	if _, err := k.checkNode(ctx, node); err != nil {
		return err
	}
	target := ""
	if ref != nil && podCommands[iv.sub] {
		target = ref.nsdebugTarget()
	}
	argv := k.remoteArgv(iv, target)
	h, err := k.startHelper(ctx, k.helperFor(node, ref, iv.sub, sysctlWrites(iv)))
	if err != nil {
		return err
	}
	defer h.delete()

	sio, restore, err := k.terminal(iv, st)
	if err != nil {
		return err
	}
	sig := ctx
	var cancel context.CancelFunc
	if iv.sub == "capture" {
		ctx, cancel = stoppable(sig, &sio, k.o.Timeout)
	} else {
		ctx, cancel = context.WithTimeout(ctx, k.o.Timeout)
	}
	defer cancel()
	code, err := h.exec(ctx, argv, sio)
	restore()
	if iv.sub == "capture" && err == nil && sig.Err() != nil && k.signals != nil {
		// The capture ended by itself on the Ctrl-C, its last packets and
		// counters sent: its status is the plugin's, as for a local one.
		k.signals.handled()
	}
	if err = h.finish(err); err != nil {
		return err
	}
	if code != 0 {
		return &nserr.ExecError{Code: code}
	}
	return nil
}

// terminal decides stdin and TTY: stdin goes along with -i, with a TTY, or
// whenever it is not a terminal (a pipe or file); a TTY is made for shell
// when stdin and stdout are terminals, and for exec with -t. In TTY mode the
// local terminal is raw, so Ctrl-C reaches the remote command as a byte.
func (k *client) terminal(iv invocation, st Streams) (execIO, func(), error) {
	sio := execIO{Stdout: st.Out, Stderr: st.ErrOut}
	inF, inIsFile := st.In.(*os.File)
	outF, outIsFile := st.Out.(*os.File)
	inTTY := inIsFile && term.IsTerminal(int(inF.Fd()))
	outTTY := outIsFile && term.IsTerminal(int(outF.Fd()))
	switch iv.sub {
	case "shell":
		sio.TTY = inTTY && outTTY || k.o.TTY
	case "exec":
		sio.TTY = k.o.TTY
	}
	if k.o.Stdin || sio.TTY || !inTTY || iv.sub == "shell" {
		sio.Stdin = st.In
	}
	if !sio.TTY || !inTTY {
		return sio, func() {}, nil
	}
	old, err := term.MakeRaw(int(inF.Fd()))
	if err != nil {
		return sio, nil, fmt.Errorf("make the terminal raw: %w", err)
	}
	q := newSizeQueue(outF)
	sio.Sizes = q
	var once sync.Once
	return sio, func() {
		once.Do(func() {
			q.stop()
			_ = term.Restore(int(inF.Fd()), old)
		})
	}, nil
}

// sizeQueue reports the terminal's size at start and on every SIGWINCH.
type sizeQueue struct {
	f    *os.File
	ch   chan os.Signal
	done chan struct{}
	sent bool
	once sync.Once
}

func newSizeQueue(f *os.File) *sizeQueue {
	q := &sizeQueue{f: f, ch: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(q.ch, syscall.SIGWINCH)
	return q
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	if q.sent {
		select {
		case <-q.ch:
		case <-q.done:
			return nil
		}
	}
	q.sent = true
	w, h, err := term.GetSize(int(q.f.Fd()))
	if err != nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}
}

func (q *sizeQueue) stop() {
	q.once.Do(func() {
		signal.Stop(q.ch)
		close(q.done)
	})
}

// fanOut runs the command for every running pod matching -l: one helper per
// node, nodes in parallel (at most --max-parallel), each line prefixed with
// [pod/NAME/CONTAINER]. The status is the worst (highest) of them.
func (k *client) fanOut(ctx context.Context, iv invocation, st Streams) error {
	errOut = st.ErrOut
	if k.o.HostTools && !iv.execStyle() {
		return nserr.New(nserr.ErrUsage, "--host-tools is for exec and shell (the other commands are nsdebug's own)")
	}
	list, err := k.cs.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{LabelSelector: k.o.Selector})
	if err != nil {
		return apiError(err, "list pods in namespace %q with selector %q", k.ns, k.o.Selector)
	}
	byNode := map[string][]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		ctr := k.o.Container
		if ctr == "" {
			ctr = defaultContainer(p)
		}
		if err := checkPod(p, ctr); err != nil {
			fmt.Fprintf(st.ErrOut, "kubectl-nsdebug: skipping: %s\n", err)
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	if len(byNode) == 0 {
		return nserr.New(nserr.ErrNotFound, "no running pod in namespace %q matches %q", k.ns, k.o.Selector)
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var mu sync.Mutex // one line at a time on each stream
	worst := 0
	report := func(code int) {
		mu.Lock()
		if code > worst {
			worst = code
		}
		mu.Unlock()
	}
	parallel := k.o.MaxParallel
	if iv.sub == "capture" {
		// Captures run until stopped: every node's at once, or those
		// beyond --max-parallel would wait for ever.
		parallel = len(nodes)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func(node string, pods []*corev1.Pod) {
			defer func() { <-sem; wg.Done() }()
			k.runNode(ctx, iv, node, pods, st, &mu, report)
		}(node, byNode[node])
	}
	wg.Wait()
	if worst != 0 {
		return &nserr.ExecError{Code: worst}
	}
	return nil
}

// runNode is one node's part of -l.
func (k *client) runNode(ctx context.Context, iv invocation, node string, pods []*corev1.Pod, st Streams, mu *sync.Mutex, report func(int)) {
	prefix := func(p *corev1.Pod) string {
		ctr := k.o.Container
		if ctr == "" {
			ctr = defaultContainer(p)
		}
		return fmt.Sprintf("[pod/%s/%s] ", p.Name, ctr)
	}
	fail := func(p *corev1.Pod, err error) {
		w := &prefixWriter{mu: mu, w: st.ErrOut, prefix: prefix(p)}
		fmt.Fprintf(w, "kubectl-nsdebug: %s\n", oneLine(err.Error()))
		report(nserr.ExitCode(err, iv.execStyle()))
	}
	h, err := k.startHelper(ctx, k.helperFor(node, nil, iv.sub, sysctlWrites(iv)))
	if err != nil {
		for _, p := range pods {
			fail(p, err)
		}
		return
	}
	defer h.delete()
	sig := ctx
	ctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	one := func(p *corev1.Pod) {
		ctr := k.o.Container
		if ctr == "" {
			ctr = defaultContainer(p)
		}
		ref := podRef{Namespace: p.Namespace, Name: p.Name, Container: ctr}
		out := &prefixWriter{mu: mu, w: st.Out, prefix: prefix(p)}
		errw := &prefixWriter{mu: mu, w: st.ErrOut, prefix: prefix(p)}
		sio := execIO{Stdout: out, Stderr: errw}
		ectx, ecancel := ctx, context.CancelFunc(func() {})
		if iv.sub == "capture" {
			ectx, ecancel = stoppable(sig, &sio, k.o.Timeout)
		}
		code, err := h.exec(ectx, k.remoteArgv(iv, ref.nsdebugTarget()), sio)
		ecancel()
		out.Flush()
		errw.Flush()
		if err != nil {
			fail(p, err)
			return
		}
		if iv.sub == "capture" && sig.Err() != nil && k.signals != nil {
			k.signals.handled() // as in single: the capture's status counts
		}
		report(code)
	}
	if iv.sub == "capture" {
		// A capture runs until stopped: the node's pods all at once, each
		// in its own exec into the one helper.
		var wg sync.WaitGroup
		for _, p := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				one(p)
			}()
		}
		wg.Wait()
		return
	}
	for _, p := range pods {
		if ctx.Err() != nil {
			fail(p, ctx.Err())
			continue
		}
		one(p)
	}
}

// prefixWriter writes whole lines, each after prefix, as kubectl logs
// --prefix does; lines of concurrent writers do not interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1]))
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// Flush writes a last line without its newline.
func (p *prefixWriter) Flush() {
	if len(p.buf) == 0 {
		return
	}
	p.mu.Lock()
	_, _ = io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
	p.mu.Unlock()
	p.buf = nil
}

// captureGrace is how long a capture through the plugin has, after the
// first Ctrl-C, to send its last packets and counters and end by itself
// before the plugin cuts the stream.
const captureGrace = 5 * time.Second

// stoppable prepares a capture's exec. Its stdin is a pipe that the end of
// sig (the first Ctrl-C, SIGTERM or SIGHUP) closes, which the remote
// nsdebug capture --stop-on-stdin-eof takes as SIGINT; its context is sig's
// values without sig's cancellation, bounded by timeout, and cut
// captureGrace after sig ends if the capture has not ended by then.
func stoppable(sig context.Context, sio *execIO, timeout time.Duration) (context.Context, context.CancelFunc) {
	pr, pw := io.Pipe()
	sio.Stdin = pr
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sig), timeout)
	go func() {
		select {
		case <-sig.Done():
		case <-ctx.Done():
			return
		}
		pw.Close()
		t := time.NewTimer(captureGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel()
		pw.Close()
	}
}
