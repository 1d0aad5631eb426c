// Package enter is the one place where nsdebug changes namespaces.
//
// setns(2) changes the namespace of the calling OS thread only, while Go moves
// goroutines between threads freely. Every switch therefore happens here, on
// a goroutine of its own that is locked to its OS thread for the whole time
// the thread is outside the host's namespaces:
//
//   - the thread is locked before the first setns and unlocked only after the
//     original network namespace is restored and verified by inode;
//   - if restoring fails, the goroutine exits still locked, and the Go runtime
//     then destroys the thread instead of returning it to the scheduler;
//   - threads that also unshare their mount namespace (exec) are never
//     restored at all: they always die with their goroutine;
//   - the process is never replaced with execve after a switch.
//
// Code outside this package never calls setns or unshare.
package enter

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// threadNetns is the calling thread's own netns file. /proc/self would name
// the thread-group leader's namespace, which may differ from this thread's.
const threadNetns = "/proc/thread-self/ns/net"

// The main thread cannot exit: when a goroutine ends locked on it, the Go
// runtime parks it forever instead, so a thread that failed to get home would
// linger in the target namespace (holding it alive). Locking the main
// goroutine to the main thread during init keeps every other goroutine, and
// so every namespace switch, off it.
func init() { runtime.LockOSThread() }

// restoreHook lets tests force a failed restore (issue: a switched thread must
// die, not return to the pool). Nil in production.
var restoreHook func(origFd int) int

// Do runs fn on a dedicated OS thread inside the network namespace ns and
// returns fn's error. The caller's own thread never changes namespace.
func Do(ns *nsfs.Netns, fn func() error) error {
	return Each([]*nsfs.Netns{ns}, func(int) error { return fn() })[0]
}

// Each runs fn(i) inside nss[i] for every i, one namespace after another on
// one dedicated, locked OS thread. It is Do for many namespaces at the cost
// of one thread hand-off instead of one per namespace (nsdebug ls visits
// hundreds), and of one setns per namespace: the thread goes from each
// namespace straight to the next and home only at the end, still locked the
// whole time. errs[i] is fn(i)'s error, or why nss[i] could not be entered.
// If the thread cannot get home, the last visited namespace's error says so
// and the thread is discarded.
func Each(nss []*nsfs.Netns, fn func(i int) error) (errs []error) {
	errs = make([]error, len(nss))
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// No deferred UnlockOSThread: unlocking is a decision taken below,
		// only once the thread is verified to be back home.
		orig, err := nsfs.Open(threadNetns)
		if err != nil {
			for i := range errs {
				errs[i] = fmt.Errorf("save current network namespace: %w", err)
			}
			runtime.UnlockOSThread() // nothing was switched
			return
		}
		defer orig.Close()
		last := -1 // the last namespace entered, -1 while at home
		for i, ns := range nss {
			if err := unix.Setns(ns.Fd(), unix.CLONE_NEWNET); err != nil {
				// setns failed, so nothing changed: the thread is where it was.
				errs[i] = setnsError(ns, err)
				continue
			}
			last = i
			errs[i] = callSafely(func() error { return fn(i) })
		}
		if last < 0 {
			runtime.UnlockOSThread() // never left home
			return
		}
		if err := restore(orig); err != nil {
			errs[last] = joinErr(errs[last], err)
			return // still locked: the runtime destroys this thread
		}
		// setns succeeding is the kernel's word that the thread is home;
		// check it once more by inode before the thread is shared again.
		if now, err := nsfs.StatID(threadNetns); err != nil || now != orig.ID {
			if errs[last] == nil {
				errs[last] = fmt.Errorf("restore network namespace: thread in %s (thread discarded)", now)
			}
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	return errs
}

// restore takes the thread back to orig.
func restore(orig *nsfs.Netns) error {
	origFd := orig.Fd()
	if restoreHook != nil {
		origFd = restoreHook(origFd)
	}
	if err := unix.Setns(origFd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("restore network namespace (thread discarded): %w", err)
	}
	return nil
}

// callSafely turns a panic in fn into an error so that the restore always
// runs: a panic must not leave a switched thread behind.
func callSafely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic inside network namespace: %v", r)
		}
	}()
	return fn()
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}

// setnsError: EPERM from a root that is root only inside a user namespace
// says so (the namespace belongs to a user namespace it does not own).
func setnsError(ns *nsfs.Netns, err error) error {
	if errors.Is(err, unix.EPERM) {
		if hint := nsfs.UserNSHint(); hint != "" {
			return nserr.New(nserr.ErrPermission, "cannot enter network namespace %s (%v): %s", ns.ID, err, hint)
		}
	}
	return fmt.Errorf("enter network namespace %s: %w", ns.ID, err)
}
