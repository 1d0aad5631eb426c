package procfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// fakeProc builds procRoot/PID/ns/net files; pids that share a key share a
// hard link, so they have the same inode, as processes in one netns do.
func fakeProc(t *testing.T, groups map[string][]string) (string, map[string]nsfs.ID) {
	t.Helper()
	root := t.TempDir()
	ids := map[string]nsfs.ID{}
	for key, pids := range groups {
		target := filepath.Join(root, "ns-"+key)
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(target, &st); err != nil {
			t.Fatal(err)
		}
		ids[key] = nsfs.ID{Dev: st.Dev, Inode: st.Ino}
		for _, pid := range pids {
			dir := filepath.Join(root, pid, "ns")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(target, filepath.Join(dir, "net")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Noise that must be ignored: non-PID entries and a process without ns/.
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	os.WriteFile(filepath.Join(root, "uptime"), []byte("1 2"), 0o644)
	os.MkdirAll(filepath.Join(root, "999"), 0o755)
	return root, ids
}

func TestScanNetnsGroupsPIDs(t *testing.T) {
	root, ids := fakeProc(t, map[string][]string{"host": {"1", "2", "40"}, "web": {"300", "301"}, "lone": {"77"}})
	res, err := ScanNetns(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"host": {1, 2, 40}, "web": {300, 301}, "lone": {77}}
	if len(res.PIDs) != len(want) {
		t.Fatalf("got %d namespaces, want %d: %v", len(res.PIDs), len(want), res.PIDs)
	}
	for key, pids := range want {
		got := res.PIDs[ids[key]]
		if len(got) != len(pids) {
			t.Fatalf("%s: pids %v, want %v", key, got, pids)
		}
		for i := range pids {
			if got[i] != pids[i] {
				t.Fatalf("%s: pids %v, want %v", key, got, pids)
			}
		}
	}
}

func TestParseNetnsMounts(t *testing.T) {
	in := strings.Join([]string{
		`22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw`,
		`600 30 0:4 net:[4026532300] /run/netns/cni-1234 rw shared:5 - nsfs nsfs rw`,
		`601 30 0:4 net:[4026532411] /run/docker/netns/ab\040c rw - nsfs nsfs rw`,
		`602 30 0:4 mnt:[4026532999] /run/mnt-ns rw - nsfs nsfs rw`,
		`garbage line`,
		`603 30 0:4 net:[notanumber] /x rw - nsfs nsfs rw`,
	}, "\n")
	got, err := parseNetnsMounts(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d mounts, want 2: %+v", len(got), got)
	}
	if got[0].MountPoint != "/run/netns/cni-1234" || got[0].ID.Inode != 4026532300 || got[0].ID.Dev != 4 || got[0].MountID != 600 {
		t.Errorf("first mount %+v", got[0])
	}
	if got[1].MountPoint != "/run/docker/netns/ab c" {
		t.Errorf("escaped mount point not decoded: %q", got[1].MountPoint)
	}
}

func TestDevOfMatchesStat(t *testing.T) {
	// Compare with a real device number: the directory's st_dev rendered as
	// major:minor the way mountinfo does.
	var st syscall.Stat_t
	if err := syscall.Stat(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	dev := st.Dev
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	s := strings.Join([]string{uitoa(major), uitoa(minor)}, ":")
	if got := devOf(s); got != dev {
		t.Fatalf("devOf(%s) = %d, want %d", s, got, dev)
	}
}

func uitoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func TestParseMountInfoLine(t *testing.T) {
	cases := []struct {
		line string
		want MountInfo
		ok   bool
	}{
		{"62 27 254:0 /run/netns /run/netns rw,relatime shared:4 - ext4 /dev/vda rw", MountInfo{ID: 62, Parent: 27, MountPoint: "/run/netns", Shared: true, FSType: "ext4"}, true},
		{"94 62 0:4 net:[4026532259] /run/netns/a\\040b rw - nsfs nsfs rw", MountInfo{ID: 94, Parent: 62, MountPoint: "/run/netns/a b", FSType: "nsfs"}, true},
		{"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw", MountInfo{ID: 36, Parent: 35, MountPoint: "/mnt2", FSType: "ext3"}, true},
		{"garbage", MountInfo{}, false},
		{"x y 0:4 / /a rw - tmpfs t rw", MountInfo{}, false},
	}
	for _, c := range cases {
		got, ok := ParseMountInfoLine(c.line)
		got.Dev, got.Root = 0, "" // not in the table
		if ok != c.ok || got != c.want {
			t.Errorf("ParseMountInfoLine(%q) = %+v %v, want %+v %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// The nsfs prefilter keeps exactly what parsing every line keeps, on this
// machine's own mount table (with the test bed's netns, hundreds of lines).
func TestNetnsMountsPrefilterOnRealMountinfo(t *testing.T) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	all, err := parseMountInfo(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range all {
		if m.FSType == "nsfs" && strings.HasPrefix(m.Root, "net:[") {
			want = append(want, m.MountPoint+" "+m.Root)
		}
	}
	got, err := parseNetnsMounts(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, m := range got {
		have = append(have, m.MountPoint+" net:["+strconv.FormatUint(m.ID.Inode, 10)+"]")
	}
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Fatalf("prefiltered parse differs from the full parse:\n%v\nwant\n%v", have, want)
	}
}

func TestContainerIDs(t *testing.T) {
	const a = "39c4b7e28db7c41e2b0ba300c5254d7394ff7e83614ed14e2cd8550ae56cb642"
	const b = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	root := t.TempDir()
	files := map[string]string{
		"10": "9:name=systemd:/docker/" + a + "\n8:pids:/docker/" + a + "\n0::/\n",             // cgroup v1, cgroupfs driver
		"11": "0::/system.slice/docker-" + b + ".scope\n",                                      // v2, systemd driver
		"12": "0::/kubepods/besteffort/pod1234/cri-containerd-" + b + ".scope\n",               // repeated: once
		"13": "0::/user.slice/user-1000.slice/session-4.scope\n",                               // no container
		"14": "0::/docker/" + a + "0\n0::/x/" + a[:63] + "\n0::/X" + strings.ToUpper(a) + "\n", // 65, 63 digits, upper case: none
	}
	for pid, s := range files {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "cgroup"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := ContainerIDs(root, []int{10, 11, 12, 13, 14, 99 /* gone */})
	if strings.Join(got, ",") != a+","+b {
		t.Fatalf("got %v, want [%s %s]", got, a, b)
	}
}
