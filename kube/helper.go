package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/version"
)

// helper is one running helper pod.
type helper struct {
	k    *client
	name string
	ns   string
	node string

	// gcAfter and ends are when gc may delete it and when the API server
	// ends it (activeDeadlineSeconds), for the message when it cannot be
	// deleted.
	gcAfter, ends time.Time

	mu      sync.Mutex
	created bool
	deleted bool
}

// helperFor is the spec the plugin's options give for node.
func (k *client) helperFor(node string, target *podRef, command string, privileged bool) HelperSpec {
	s := HelperSpec{
		Name: HelperName(node), Namespace: k.o.HelperNS, Node: node,
		Image: k.o.Image, PullPolicy: corev1.PullPolicy(k.o.PullPolicy),
		Lifetime: k.o.Timeout, Slack: k.o.DeadlineSlack, Privileged: privileged, Client: k.host,
		Command: command, Now: time.Now(),
	}
	if target != nil {
		s.TargetNS, s.TargetPod = target.Namespace, target.Name
	}
	return s
}

// startHelper creates the helper pod and waits until its idle command runs.
// On error the pod is already deleted. The caller defers h.delete().
func (k *client) startHelper(ctx context.Context, spec HelperSpec) (*helper, error) {
	pod := HelperPod(spec)
	h := &helper{k: k, name: spec.Name, ns: spec.Namespace, node: spec.Node,
		gcAfter: spec.Deadline(), ends: spec.Now.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second)}
	// Marked before the call: a Ctrl-C while it is in flight must still
	// delete a pod the server may have made.
	h.mu.Lock()
	h.created = true
	h.mu.Unlock()
	created, err := k.cs.CoreV1().Pods(spec.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		h.delete()
		return nil, k.createError(err, spec)
	}
	if err := h.wait(ctx, created); err != nil {
		h.delete()
		return nil, err
	}
	return h, nil
}

// createError explains a refused create: Pod Security admission, other
// admission, a missing helper namespace, RBAC.
func (k *client) createError(err error, spec HelperSpec) error {
	msg := statusMessage(err)
	switch {
	case strings.Contains(msg, "violates PodSecurity"):
		level := "restricted"
		if i := strings.Index(msg, `violates PodSecurity "`); i >= 0 {
			level, _, _ = strings.Cut(msg[i+len(`violates PodSecurity "`):], ":")
		}
		return nserr.New(nserr.ErrAdmission, "Pod Security admission rejected the helper pod in namespace %q (pod-security.kubernetes.io/enforce=%s forbids hostPID and added capabilities): use --helper-namespace with a namespace that allows privileged pods (the default is %s), or label %q pod-security.kubernetes.io/enforce=privileged", spec.Namespace, level, DefaultHelperNamespace, spec.Namespace)
	case apierrors.IsNotFound(err):
		return nserr.New(nserr.ErrNotFound, "helper namespace %q not found (--helper-namespace)", spec.Namespace)
	case apierrors.IsForbidden(err) && (strings.Contains(msg, "admission") || strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "denied")):
		return nserr.New(nserr.ErrAdmission, "the API server refused the helper pod in namespace %q: %s", spec.Namespace, msg)
	case apierrors.IsInvalid(err) && strings.Contains(msg, "Forbidden"):
		return nserr.New(nserr.ErrAdmission, "the API server refused the helper pod in namespace %q: %s", spec.Namespace, msg)
	}
	return apiError(err, "create helper pod %s/%s", spec.Namespace, spec.Name)
}

// waitingFailures are container waiting reasons that will not resolve on
// their own within the wait: reported at once.
var waitingFailures = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"CrashLoopBackOff": true, "PreCreateHookError": true, "PreStartHookError": true,
}

// wait watches the helper pod until its container runs, fails, or the
// start timeout passes. Never unbounded.
func (h *helper) wait(ctx context.Context, pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, h.k.o.StartTimeout)
	defer cancel()
	last := pod
	rv := pod.ResourceVersion
	for {
		if done, err := h.podState(last); done || err != nil {
			return err
		}
		w, err := h.k.cs.CoreV1().Pods(h.ns).Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", h.name).String(),
			ResourceVersion: rv,
		})
		if err != nil {
			if ctx.Err() != nil {
				return h.waitTimeout(ctx, last)
			}
			return apiError(err, "watch helper pod %s/%s", h.ns, h.name)
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Deleted:
				w.Stop()
				return nserr.New(nserr.ErrHelper, "helper pod %s/%s was deleted while starting (by gc, or by someone else)", h.ns, h.name)
			case watch.Error:
				rv = "" // expired: start over from a fresh read
			default:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				last, rv = p, p.ResourceVersion
				if done, err := h.podState(last); done || err != nil {
					w.Stop()
					return err
				}
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return h.waitTimeout(ctx, last)
		}
		if rv == "" {
			p, err := h.k.cs.CoreV1().Pods(h.ns).Get(ctx, h.name, metav1.GetOptions{})
			if err != nil {
				if ctx.Err() != nil {
					return h.waitTimeout(ctx, last)
				}
				return apiError(err, "get helper pod %s/%s", h.ns, h.name)
			}
			last, rv = p, p.ResourceVersion
		}
	}
}

// podState: done when the helper runs; an error when it never will.
func (h *helper) podState(p *corev1.Pod) (bool, error) {
	where := fmt.Sprintf("helper pod %s/%s on node %s", h.ns, h.name, h.node)
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		if t := terminated(p); t != nil {
			return true, h.terminatedError(where, t)
		}
		return true, nserr.New(nserr.ErrHelper, "%s ended (%s): %s: %s", where, p.Status.Phase, orDash(p.Status.Reason), orDash(p.Status.Message))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && waitingFailures[w.Reason] {
			return true, nserr.New(nserr.ErrHelper, "%s cannot start: %s: %s", where, w.Reason, orDash(w.Message))
		}
		if t := cs.State.Terminated; t != nil {
			return true, h.terminatedError(where, t)
		}
		if cs.State.Running != nil {
			return true, nil
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true, nserr.New(nserr.ErrHelper, "%s is unschedulable: %s", where, c.Message)
		}
	}
	return false, nil
}

func terminated(p *corev1.Pod) *corev1.ContainerStateTerminated {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated != nil {
			return cs.State.Terminated
		}
	}
	return nil
}

// terminatedError: the idle command ended before the plugin used it. Exit 14
// is nsdebug's protocol check; 2 with "unknown command" an nsdebug older
// than the protocol.
func (h *helper) terminatedError(where string, t *corev1.ContainerStateTerminated) error {
	msg := strings.TrimSpace(t.Message)
	switch {
	case t.ExitCode == nserr.ExitProtocol:
		return nserr.New(nserr.ErrProtocol, "image %s: %s", h.k.o.Image, strings.TrimPrefix(lastLine(msg), "nsdebug: "))
	case t.ExitCode == nserr.ExitUsage && strings.Contains(msg, "unknown command"):
		return nserr.New(nserr.ErrProtocol, "image %s holds an nsdebug older than protocol %d (it has no node-helper command): use an image of kubectl-nsdebug's version %s (--image)", h.k.o.Image, version.Protocol, version.Version)
	case t.ExitCode == 127 || t.Reason == "StartError" || t.Reason == "ContainerCannotRun":
		return nserr.New(nserr.ErrHelper, "%s could not run nsdebug (is it in the image's PATH?): %s: %s", where, orDash(t.Reason), orDash(lastLine(msg)))
	}
	return nserr.New(nserr.ErrHelper, "%s exited with status %d (%s): %s", where, t.ExitCode, orDash(t.Reason), orDash(lastLine(msg)))
}

func (h *helper) waitTimeout(ctx context.Context, last *corev1.Pod) error {
	if h.k.signals != nil && h.k.signals.received() != 0 {
		return ctx.Err()
	}
	state := string(last.Status.Phase)
	for _, cs := range last.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			state += ", " + w.Reason
			if w.Message != "" {
				state += ": " + w.Message
			}
		}
	}
	if state == "" {
		state = "no status: the node's kubelet never reported on it"
	}
	note := ""
	ctx2, cancel := fresh()
	defer cancel()
	if n, err := h.k.cs.CoreV1().Nodes().Get(ctx2, h.node, metav1.GetOptions{}); err == nil {
		if r := nodeReady(n); r != "" {
			note = "; " + r
		}
	}
	return nserr.New(nserr.ErrHelper, "helper pod %s/%s did not start on node %s within %s (last state: %s)%s", h.ns, h.name, h.node, h.k.o.StartTimeout, state, note)
}

// deleteBound is how long a deletion keeps trying an API server it cannot
// reach: a cut connection is often back within seconds, and an exit must
// not wait longer than this for one that is not.
var deleteBound = 15 * time.Second

// delete is remove for deferred clean-up: a failure is a warning line.
func (h *helper) delete() {
	if err := h.remove(); err != nil {
		fmt.Fprintf(errOut, "kubectl-nsdebug: warning: %s\n", oneLine(err.Error()))
	}
}

// remove deletes the helper with grace period 0 on a context of its own: it
// runs after Ctrl-C, SIGTERM, errors and lost connections alike. While the
// API server cannot be reached (a connection refused, reset or timed out,
// or a 429/5xx answer) it tries again on a fresh connection, for at most
// deleteBound; then the error names the helper and what will remove it.
func (h *helper) remove() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.created || h.deleted {
		return nil
	}
	h.deleted = true
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), deleteBound)
	defer cancel()
	grace := int64(0)
	pause := 200 * time.Millisecond
	for {
		err := h.k.cs.CoreV1().Pods(h.ns).Delete(ctx, h.name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !retryable(err) {
			return h.notDeleted(err, "")
		}
		select {
		case <-ctx.Done():
			return h.notDeleted(err, fmt.Sprintf(" (the API server was unreachable for %s)", time.Since(start).Round(time.Second)))
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// retryable: the API server did not answer, or answered that it cannot now.
func retryable(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true // no answer at all: the connection
	}
	return apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsInternalError(err)
}

// notDeletedError says a helper is left and what removes it.
type notDeletedError struct{ msg string }

func (e *notDeletedError) Error() string { return e.msg }

func (h *helper) notDeleted(err error, why string) error {
	return &notDeletedError{fmt.Sprintf("helper pod %s/%s was not deleted%s: %s; 'kubectl nsdebug gc' deletes it once past its deadline (%s), and the API server ends it at its activeDeadlineSeconds (%s) without gc",
		h.ns, h.name, why, oneLine(err.Error()), h.gcAfter.UTC().Format(time.RFC3339), h.ends.UTC().Format(time.RFC3339))}
}

// finish deletes the helper after the command, and folds the outcome into
// the command's error: one line says both what went wrong and whether the
// helper is gone. After a clean run a failed deletion is a warning only
// (the command's status stays the plugin's).
func (h *helper) finish(err error) error {
	derr := h.remove()
	switch {
	case err == nil && derr != nil:
		fmt.Fprintf(errOut, "kubectl-nsdebug: warning: %s\n", oneLine(derr.Error()))
	case err != nil && derr != nil:
		return &joined{err: err, also: derr}
	case err != nil && errors.Is(err, nserr.ErrUnavailable):
		return fmt.Errorf("%w; helper pod %s/%s was deleted", err, h.ns, h.name)
	}
	return err
}

// joined is err (whose kind decides the exit status) followed by also.
type joined struct{ err, also error }

func (j *joined) Error() string   { return j.err.Error() + "; " + j.also.Error() }
func (j *joined) Unwrap() []error { return []error{j.err, j.also} }

// errOut is where clean-up warnings go (the plugin's stderr).
var errOut io.Writer = io.Discard

// execIO is one remote command's streams.
type execIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool
	Sizes  remotecommand.TerminalSizeQueue
}

// forceSPDY makes exec skip WebSocket (tests of the fallback's other leg).
var forceSPDY = false

// exec runs argv in the helper over pods/exec: WebSocket first, SPDY when the
// server or a proxy refuses the WebSocket upgrade (client-go's fallback
// executor; the upgrade check is k8s.io/streaming's httpstream, the one
// client-go's executors return errors of). It returns the remote status.
func (h *helper) exec(ctx context.Context, argv []string, sio execIO) (int, error) {
	req := h.k.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(h.ns).Name(h.name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: helperContainer, Command: argv,
			Stdin: sio.Stdin != nil, Stdout: true, Stderr: !sio.TTY, TTY: sio.TTY,
		}, scheme.ParameterCodec)
	ex, err := newExecutor(h.k, req.URL())
	if err != nil {
		return 0, err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdin: sio.Stdin, Stdout: sio.Stdout, Stderr: sio.Stderr, Tty: sio.TTY, TerminalSizeQueue: sio.Sizes,
	})
	if err == nil {
		return 0, nil
	}
	if ee, ok := err.(utilexec.ExitError); ok && ee.Exited() {
		return ee.ExitStatus(), nil
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if apierrors.IsForbidden(err) || strings.Contains(err.Error(), "forbidden") {
		return 0, nserr.New(nserr.ErrPermission, "exec in helper pod %s/%s: %s (see 'kubectl nsdebug rbac')", h.ns, h.name, statusMessage(err))
	}
	return 0, nserr.Wrap(nserr.ErrUnavailable, err, "exec in helper pod %s/%s: connection to the API server lost", h.ns, h.name)
}

func newExecutor(k *client, url *url.URL) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(k.rc, "POST", url)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if forceSPDY {
		return spdy, nil
	}
	ws, err := remotecommand.NewWebSocketExecutor(k.rc, "GET", url.String())
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
