// Package nldump redoes netlink dumps that the kernel interrupted. It sits
// below inspect and enter so that every dump nsdebug makes, wherever it is,
// goes through the same rule.
package nldump

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// MaxAttempts bounds how often an interrupted netlink dump is redone. The
// kernel sets NLM_F_DUMP_INTR when the table changed while it was being
// dumped (busy hosts: containers starting); the answer may then miss or
// repeat entries, so it is thrown away and asked again.
const MaxAttempts = 8

// Retry runs dump until it is not interrupted by a concurrent change
// (netlink.ErrDumpInterrupted), at most MaxAttempts times. It never returns
// the half-filled result of an interrupted dump.
func Retry[T any](dump func() (T, error)) (T, error) {
	var zero T
	var err error
	for range MaxAttempts {
		var v T
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return zero, err
			}
			return v, nil
		}
	}
	return zero, fmt.Errorf("netlink dump interrupted %d times in a row (the table keeps changing): %w", MaxAttempts, err)
}
