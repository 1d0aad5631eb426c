package inspect

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// maxDumpAttempts bounds how often an interrupted netlink dump is redone.
// The kernel sets NLM_F_DUMP_INTR when the table changed while it was being
// dumped (busy hosts: containers starting); the answer may then miss or
// repeat entries, so it is thrown away and asked again.
const maxDumpAttempts = 8

// RetryDump runs dump until it is not interrupted by a concurrent change
// (netlink.ErrDumpInterrupted), at most maxDumpAttempts times. It never
// returns the half-filled result of an interrupted dump.
func RetryDump[T any](dump func() (T, error)) (T, error) {
	var zero T
	var err error
	for range maxDumpAttempts {
		var v T
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return zero, err
			}
			return v, nil
		}
	}
	return zero, fmt.Errorf("netlink dump interrupted %d times in a row (the table keeps changing): %w", maxDumpAttempts, err)
}
