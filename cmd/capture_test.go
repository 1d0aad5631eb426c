package cmd

import (
	"strings"
	"testing"
)

func TestCaptureArgs(t *testing.T) {
	o := captureOptions{SnapLen: 262144, RingKiB: 4096, Format: "pcapng", LinkType: "sll2"}
	if err := o.setArgs([]string{"web"}); err != nil || o.Target != "web" || o.Filter != "" {
		t.Fatalf("web: %+v %v", o, err)
	}
	all := captureOptions{SnapLen: 262144, RingKiB: 4096, Format: "pcapng", LinkType: "sll2", All: true}
	if err := all.setArgs(nil); err != nil || all.Target != "" {
		t.Fatalf("--all: %+v %v", all, err)
	}
}

// Bad input is one line and exit 2 before anything is opened (no root
// needed to find out).
func TestCaptureUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"capture"},
		{"capture", "web", "-c", "-1"},
		{"capture", "web", "-s", "0"},
		{"capture", "web", "-s", "300000"},
		{"capture", "web", "-B", "100"},
		{"capture", "web", "--format", "xml"},
		{"capture", "web", "--linktype", "sll3"},
		{"capture", "web", "--host"},
		{"capture", "--all", "-w", "x.pcap", "--format", "pcap"},
		{"capture", "web", "--duration", "-1s"},
		{"capture", "web", "tcp", "port"},
		{"capture", "web", "--no-such-flag"},
	} {
		_, stderr, code := runEnv(t, func(e *Env) { e.SkipPrivCheck = true }, args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
