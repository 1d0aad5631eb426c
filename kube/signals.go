package kube

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// sigCtx turns SIGINT, SIGTERM and SIGHUP into a cancelled context. The
// signals stay caught until the plugin returns: a second Ctrl-C while the
// helper pod is being deleted is ignored instead of killing the plugin
// before the deletion is done.
type sigCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	mu     sync.Mutex
	sig    syscall.Signal
	// passed: the remote command got the signal and ended by itself, so
	// its status, not the signal's, is the plugin's.
	passed bool
}

func signalContext() (*sigCtx, func()) {
	s := &sigCtx{ch: make(chan os.Signal, 4)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-s.ch:
				s.mu.Lock()
				if s.sig == 0 {
					s.sig = sig.(syscall.Signal)
				}
				s.mu.Unlock()
				s.cancel()
			case <-done:
				return
			}
		}
	}()
	return s, func() {
		signal.Stop(s.ch)
		close(done)
		s.cancel()
	}
}

// received is the first signal caught, or 0.
func (s *sigCtx) received() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig
}

// handled records that the signal reached the remote command, which ended
// by itself.
func (s *sigCtx) handled() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passed = true
}

// passedOn reports whether handled was called.
func (s *sigCtx) passedOn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.passed
}
