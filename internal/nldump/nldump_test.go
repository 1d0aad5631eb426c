package nldump

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRetry(t *testing.T) {
	calls := 0
	v, err := Retry(func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{1}, netlink.ErrDumpInterrupted // half-filled
		}
		return []int{1, 2}, nil
	})
	if err != nil || !reflect.DeepEqual(v, []int{1, 2}) || calls != 3 {
		t.Fatalf("got %v %v after %d calls", v, err, calls)
	}

	calls = 0
	v, err = Retry(func() ([]int, error) { calls++; return []int{9}, netlink.ErrDumpInterrupted })
	if v != nil || !errors.Is(err, netlink.ErrDumpInterrupted) || calls != MaxAttempts {
		t.Fatalf("always interrupted: got %v %v after %d calls", v, err, calls)
	}

	boom := errors.New("boom")
	calls = 0
	v, err = Retry(func() ([]int, error) { calls++; return []int{9}, boom })
	if v != nil || !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("other error: got %v %v after %d calls", v, err, calls)
	}
}
