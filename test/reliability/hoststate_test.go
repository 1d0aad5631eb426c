package reliability

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Case 16's own check must be able to fail: additions and removals of any
// mount (stacked ones counted), of /var/run/netns entries, a leftover
// process, a changed sysctl.
func TestCase16_SnapshotDiffFindsLeaks(t *testing.T) {
	before := hostState{
		mounts:  map[string]int{"/sys sysfs sysfs /": 1, "/tmp/gone tmpfs x /": 1},
		netns:   map[string]int{"blue": 1, "gone": 1},
		procs:   map[string]string{"10 100": "PID 10 old"},
		sysctls: map[string]string{"/proc/sys/net/core/somaxconn": "4096\n"},
	}
	after := hostState{
		mounts:  map[string]int{"/sys sysfs sysfs /": 2, "/etc/resolv.conf ext4 /dev/vda /x": 1},
		netns:   map[string]int{"blue": 1, "new": 1},
		procs:   map[string]string{"10 100": "PID 10 old", "11 200": "PID 11 \"sleep 30\" (NSDEBUG_TARGET=x)"},
		sysctls: map[string]string{"/proc/sys/net/core/somaxconn": "17\n"},
	}
	want := []string{
		`leftover process: PID 11 "sleep 30" (NSDEBUG_TARGET=x)`,
		"new /var/run/netns entry: new",
		"new mount: /etc/resolv.conf ext4 /dev/vda /x",
		"new mount: /sys sysfs sysfs /",
		"removed /var/run/netns entry: gone",
		"removed mount: /tmp/gone tmpfs x /",
		`sysctl /proc/sys/net/core/somaxconn changed: "4096" -> "17"`,
	}
	if got := before.diff(after); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("diff:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if got := before.diff(before); got != "" {
		t.Errorf("no change gives %q", got)
	}
}

// The process scan finds what exec leaves, wherever it was re-parented: a
// process with NSDEBUG_TARGET in its environment, and the nsdebug binary.
func TestCase16_ProcessScanFindsNsdebugProcesses(t *testing.T) {
	var cmds []*exec.Cmd
	for _, c := range []*exec.Cmd{exec.Command("sleep", "30"), exec.Command(bin, "exec", "pid:"+strconv.Itoa(os.Getpid()), "--", "sleep", "30")} {
		if c.Args[0] == "sleep" {
			c.Env = append(os.Environ(), "NSDEBUG_TARGET=scan-test")
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	defer func() {
		for _, c := range cmds {
			// SIGTERM: nsdebug passes it on to its command and waits for it.
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}()
	found := map[int]string{}
	for _, desc := range nsdebugProcesses() {
		for _, c := range cmds {
			if strings.HasPrefix(desc, "PID "+strconv.Itoa(c.Process.Pid)+" ") {
				found[c.Process.Pid] = desc
			}
		}
	}
	if len(found) != len(cmds) {
		t.Errorf("scan found %v of PIDs %d, %d", found, cmds[0].Process.Pid, cmds[1].Process.Pid)
	}
}
