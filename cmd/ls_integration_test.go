package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

func lsJSON(t *testing.T) []inspect.NetnsRow {
	t.Helper()
	stdout, stderr, code := run(t, "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("ls -o json: exit %d: %s", code, stderr)
	}
	var rows []inspect.NetnsRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("ls -o json is not JSON: %v\n%s", err, stdout)
	}
	return rows
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func findRow(rows []inspect.NetnsRow, inode uint64) *inspect.NetnsRow {
	for i := range rows {
		if rows[i].Netns.Inode == inode {
			return &rows[i]
		}
	}
	return nil
}

// ipAddrs is the ground truth: iproute2's view of the namespace.
func ipAddrs(t *testing.T, netns string) map[string][]string {
	t.Helper()
	out := testbed.MustRun(t, "ip", "-n", netns, "-j", "addr")
	var links []struct {
		Ifname   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, l := range links {
		m[l.Ifname] = []string{}
		for _, a := range l.AddrInfo {
			m[l.Ifname] = append(m[l.Ifname], fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
		sort.Strings(m[l.Ifname])
	}
	return m
}

func TestLsListsNamespacesFromTheKernelSide(t *testing.T) {
	testbed.RequireRoot(t)
	a := testbed.NewNetNS(t, "lsa")
	b := testbed.NewNetNS(t, "lsb")
	veth := fmt.Sprintf("lsv%d", os.Getpid()%100000)
	testbed.MustRun(t, "ip", "link", "add", veth+"a", "netns", a.Name, "type", "veth", "peer", "name", veth+"b", "netns", b.Name)
	testbed.MustRun(t, "ip", "-n", a.Name, "addr", "add", "10.232.1.1/24", "dev", veth+"a")
	testbed.MustRun(t, "ip", "-n", a.Name, "addr", "add", "fd00:232::1/64", "dev", veth+"a", "nodad")
	testbed.MustRun(t, "ip", "-n", a.Name, "link", "set", veth+"a", "up")
	pid := b.StartProcess(t, "sleep", "60")

	var rows []inspect.NetnsRow
	// the process may still be on its way into b
	for i := 0; i < 50; i++ {
		rows = lsJSON(t)
		if r := findRow(rows, inodeOf(t, b.Path)); r != nil && len(r.PIDs) > 0 {
			break
		}
	}

	ra := findRow(rows, inodeOf(t, a.Path))
	if ra == nil {
		t.Fatalf("netns %s missing from ls", a.Name)
	}
	if !ra.Orphaned || ra.Host || len(ra.PIDs) != 0 {
		t.Errorf("%s: orphaned=%v host=%v pids=%v, want an orphaned netns held by its mount only", a.Name, ra.Orphaned, ra.Host, ra.PIDs)
	}
	aReal := realPath(t, a.Path) // /var/run is a symlink to /run; mountinfo has the real path
	if len(ra.Mounts) != 1 || ra.Mounts[0].Path != aReal || ra.Mounts[0].Hidden || ra.Netns.Path != aReal {
		t.Errorf("%s: mounts %+v path %q", a.Name, ra.Mounts, ra.Netns.Path)
	}
	want := ipAddrs(t, a.Name)
	got := map[string][]string{}
	for _, i := range ra.Interfaces {
		addrs := append([]string{}, i.Addresses...)
		sort.Strings(addrs)
		got[i.Name] = addrs
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s interfaces:\n got %v\nwant %v (ip -j addr)", a.Name, got, want)
	}

	rb := findRow(rows, inodeOf(t, b.Path))
	if rb == nil || rb.Orphaned || !contains(rb.PIDs, pid) {
		t.Errorf("%s: row %+v, want PID %d and not orphaned", b.Name, rb, pid)
	}

	// Exactly one host row, and it is the netns of kthreadd (PID 2).
	hosts := 0
	for _, r := range rows {
		if r.Host {
			hosts++
			if r.Netns.Inode != inodeOf(t, "/proc/2/ns/net") {
				t.Errorf("host row inode %d is not kthreadd's netns", r.Netns.Inode)
			}
		}
	}
	if hosts != 1 {
		t.Errorf("%d host rows, want 1", hosts)
	}
	// No duplicate rows.
	seen := map[uint64]bool{}
	for _, r := range rows {
		if seen[r.Netns.Inode] {
			t.Errorf("netns %d listed twice", r.Netns.Inode)
		}
		seen[r.Netns.Inode] = true
	}

	// The table names the netns and its address.
	stdout, _, code := run(t, "ls")
	if code != 0 || !strings.Contains(stdout, aReal) || !strings.Contains(stdout, "10.232.1.1/24") || !strings.Contains(stdout, "orphaned") {
		t.Errorf("ls table lacks %s / its address / orphaned flag:\n%s", aReal, stdout)
	}
}

// The /run/netns trap: an nsfs bind mount covered by a later mount of its
// directory. mountinfo still lists it; ls must flag it hidden.
func TestLsFlagsHiddenMounts(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNetNS(t, "hid")
	dir := t.TempDir()
	file := filepath.Join(dir, "held")
	if err := os.WriteFile(file, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	testbed.MustRun(t, "mount", "--bind", ns.Path, file)
	t.Cleanup(func() { exec.Command("umount", file).Run() })
	testbed.MustRun(t, "mount", "--bind", dir, dir) // covers the nsfs mount, as `ip netns` does to /run/netns
	t.Cleanup(func() { exec.Command("umount", dir).Run() })

	rows := lsJSON(t)
	r := findRow(rows, inodeOf(t, ns.Path))
	if r == nil {
		t.Fatal("netns missing")
	}
	var hidden, visible bool
	for _, m := range r.Mounts {
		if m.Path == file && m.Hidden {
			hidden = true
		}
		if m.Path == realPath(t, ns.Path) && !m.Hidden {
			visible = true
		}
	}
	if !hidden || !visible {
		t.Errorf("mounts %+v: want %s hidden and %s visible", r.Mounts, file, ns.Path)
	}
	stdout, stderr, code := run(t, "resolve", file)
	if code != 6 || !strings.Contains(stderr, "hidden under a later mount") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("resolve of a hidden mount point: exit %d %q %q", code, stdout, stderr)
	}
}

func TestResolveNetnsAndPID(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNetNS(t, "res")
	pid := ns.StartProcess(t, "sleep", "60")
	ino := inodeOf(t, ns.Path)

	stdout, stderr, code := run(t, "resolve", "netns:"+ns.Name, "-o", "json")
	if code != 0 {
		t.Fatalf("resolve netns: %d %s", code, stderr)
	}
	var res struct {
		Runtime string    `json:"runtime"`
		Name    string    `json:"name"`
		PID     int       `json:"pid"`
		Host    bool      `json:"host"`
		Pod     *struct{} `json:"pod"`
		Netns   struct {
			Path  string `json:"path"`
			Inode uint64 `json:"inode"`
			Dev   uint64 `json:"dev"`
		} `json:"netns"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Runtime != "netns" || res.Name != ns.Name || res.Host || res.Netns.Inode != ino || res.Netns.Path != ns.Path || res.Pod != nil {
		t.Errorf("resolve netns:%s = %+v", ns.Name, res)
	}

	for _, target := range []string{fmt.Sprint(pid), fmt.Sprintf("pid:%d", pid)} {
		stdout, stderr, code = run(t, "resolve", target, "-o", "json")
		if code != 0 {
			t.Fatalf("resolve %s: %d %s", target, code, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if res.Runtime != "pid" || res.PID != pid || res.Netns.Inode != ino || res.Host {
			t.Errorf("resolve %s = %+v, want netns %d", target, res, ino)
		}
	}

	// The host: our own PID is in the host netns here.
	stdout, _, code = run(t, "resolve", fmt.Sprint(os.Getpid()), "-o", "json")
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || !res.Host {
		t.Errorf("own PID not marked host: %s", stdout)
	}

	// Not netns / missing.
	for target, want := range map[string]int{"/etc/passwd": 6, "/proc/self/status": 6, "/tmp": 6, "netns:nsdebug-no-such": 3, "pid:4194000": 3, "/nonexistent/x": 3} {
		_, stderr, code := run(t, "resolve", target)
		if code != want || strings.Count(stderr, "\n") != 1 {
			t.Errorf("resolve %s: exit %d (want %d), stderr %q", target, code, want, stderr)
		}
	}
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func ownerRefs(r *inspect.NetnsRow) []string {
	var refs []string
	for _, o := range r.Owners {
		refs = append(refs, o.Ref())
	}
	return refs
}

func hasRef(r *inspect.NetnsRow, ref string) bool {
	for _, s := range ownerRefs(r) {
		if s == ref {
			return true
		}
	}
	return false
}

// Owners come from the runtimes and land on the right rows: a bridge
// container and the container joined to it share one row; a host-network
// container is an owner of the host row; a pod owns its CNI netns.
func TestLsOwnersFromRuntimes(t *testing.T) {
	testbed.Require(t)
	br := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lsbr"})
	joined := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lsjoin", Network: "container:" + br.Name})
	host := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lshost", Network: "host"})
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "lsns", Containers: []string{"app"}})

	rows := lsJSON(t)
	brRow := findRow(rows, inodeOf(t, br.SandboxKey))
	if brRow == nil || !hasRef(brRow, "docker:"+br.Name) || !hasRef(brRow, "docker:"+joined.Name) {
		t.Errorf("bridge row: %+v, want owners docker:%s and docker:%s", brRow, br.Name, joined.Name)
	} else {
		var ips []string
		for _, i := range brRow.Interfaces {
			ips = append(ips, i.Addresses...)
		}
		if !strings.Contains(strings.Join(ips, ","), br.IPs[0]+"/") {
			t.Errorf("bridge row addresses %v lack %s", ips, br.IPs[0])
		}
		if brRow.Owners[0].Runtime != "docker" {
			t.Errorf("most specific owner first: %v", ownerRefs(brRow))
		}
	}
	hostRow := findRow(rows, inodeOf(t, "/proc/2/ns/net"))
	if hostRow == nil || !hostRow.Host || !hasRef(hostRow, "docker:"+host.Name) {
		t.Errorf("host row lacks docker:%s: %v", host.Name, ownerRefs(hostRow))
	}
	podRow := findRow(rows, inodeOf(t, pod.NetnsPath))
	if podRow == nil || !hasRef(podRow, "pod:"+pod.Namespace+"/"+pod.Name) {
		t.Fatalf("pod row: %v, want pod:%s/%s", podRow, pod.Namespace, pod.Name)
	}
	if podRow.Orphaned || len(podRow.PIDs) < 2 {
		t.Errorf("pod row pids %v (sandbox and app expected)", podRow.PIDs)
	}
	stdout, _, _ := run(t, "ls")
	for _, want := range []string{"docker:" + br.Name, "pod:" + pod.Namespace + "/" + pod.Name, pod.IP + "/"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ls table lacks %q", want)
		}
	}
	// -o wide: the host side of each veth pair and its bridge, as iproute2
	// names them (the host link whose index is eth0's link_index), for the
	// default bridge, a user-defined network and a CNI pod.
	userNet := testbed.NewDockerNetwork(t, "lsnet")
	user := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lsuser", Network: userNet})
	wide, stderr, code := run(t, "ls", "-o", "wide")
	if code != 0 {
		t.Fatalf("ls -o wide: exit %d: %s", code, stderr)
	}
	for _, c := range []struct{ what, nsPath string }{
		{"docker:" + br.Name, br.SandboxKey},
		{"docker:" + user.Name, user.SandboxKey},
		{"pod:" + pod.Namespace + "/" + pod.Name, pod.NetnsPath},
	} {
		peer := hostPeerOf(t, c.nsPath, "eth0")
		want := peer.Ifname + "@" + peer.Master
		row := wideRow(wide, inodeOf(t, c.nsPath))
		if row == nil {
			t.Errorf("ls -o wide has no row for %s (net:[%d]):\n%s", c.what, inodeOf(t, c.nsPath), wide)
			continue
		}
		var veths []string
		for _, f := range row {
			if strings.Contains(f, "@") {
				veths = append(veths, f)
			}
		}
		if len(veths) != 1 || veths[0] != want || peer.Master == "" {
			t.Errorf("ls -o wide row of %s shows host veths %q, iproute2 says %s: %q", c.what, veths, want, row)
		}
	}
}

// wideRow is the row of ls -o wide whose NETNS column is inode, as fields.
func wideRow(table string, inode uint64) []string {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == fmt.Sprint(inode) {
			return f
		}
	}
	return nil
}

// A runtime that does not answer is a warning; the kernel side is complete.
func TestLsSurvivesSilentRuntimes(t *testing.T) {
	testbed.Require(t)
	ns := testbed.NewNetNS(t, "lssil")
	stdout, stderr, code := run(t, "--docker-host", "unix:///nonexistent.sock", "--containerd-address", "/nonexistent.sock", "--cri-endpoint", "/nonexistent.sock", "--timeout", "500ms", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, rt := range []string{"docker", "containerd", "cri"} {
		if !strings.Contains(stderr, "warning: "+rt) {
			t.Errorf("no warning for %s: %q", rt, stderr)
		}
	}
	var rows []inspect.NetnsRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if findRow(rows, inodeOf(t, ns.Path)) == nil {
		t.Error("kernel-side netns missing when runtimes are down")
	}
}
