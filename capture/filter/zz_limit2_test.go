package filter

import (
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestZZLimit2(t *testing.T) {
	for _, kind := range []string{"ldi", "ldabs", "jeq"} {
		lo, hi := 1, 4200
		for lo < hi {
			mid := (lo + hi + 1) / 2
			var p []bpf.RawInstruction
			for i := 0; i < mid-1; i++ {
				switch kind {
				case "ldi":
					p = append(p, bpf.RawInstruction{Op: 0x00, K: 1})
				case "ldabs":
					p = append(p, bpf.RawInstruction{Op: 0x28, K: 12})
				case "jeq":
					p = append(p, bpf.RawInstruction{Op: 0x15, K: 5})
				}
			}
			p = append(p, bpf.RawInstruction{Op: 0x06, K: 1})
			pfd, _ := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			attach(pfd, []bpf.RawInstruction{{Op: 6}})
			err := attach(pfd, p)
			unix.Close(pfd)
			if err == nil {
				lo = mid
			} else {
				hi = mid - 1
				if mid%7 == 0 {
					t.Logf("%s %d: %v", kind, mid, err)
				}
			}
		}
		t.Logf("%s: largest accepted %d", kind, lo)
	}
}
