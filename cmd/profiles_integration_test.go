package cmd

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// iptablesChains counts the rules of every chain of table t as iptables
// (here iptables-nft: its chains are nftables chains of table ip t) lists
// them in the host netns.
func iptablesChains(t *testing.T, table string) map[string]int {
	t.Helper()
	out := nsRun(t, "/proc/2/ns/net", "iptables", "-t", table, "-S")
	counts := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "-P" || f[0] == "-N"):
			counts[f[1]] += 0
		case len(f) >= 2 && f[0] == "-A":
			counts[f[1]]++
		}
	}
	return counts
}

// TestInspectDockerChains: inspect's firewall section of the host netns
// shows Docker's chains with the rule counts iptables lists. Docker 28+
// (the current profile) filters in DOCKER-FORWARD and drops packets routed
// straight to a container's published port from outside its bridge in the
// raw table's PREROUTING; Docker 20.10 (debian) has neither.
func TestInspectDockerChains(t *testing.T) {
	v := testbed.LiveVersions(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-fw", Args: []string{"-p", "127.0.0.1::8080"}})
	if len(c.IPs) == 0 {
		t.Fatalf("container %s has no address", c.Name)
	}
	rawDrop := false
	for _, line := range strings.Split(nsRun(t, "/proc/2/ns/net", "iptables", "-t", "raw", "-S", "PREROUTING"), "\n") {
		rawDrop = rawDrop || (strings.Contains(line, "-d "+c.IPs[0]+"/32") && strings.HasSuffix(line, "-j DROP"))
	}
	filter := iptablesChains(t, "filter")
	_, forward := filter["DOCKER-FORWARD"]
	switch v.Profile {
	case testbed.ProfileCurrent:
		if !forward || !rawDrop {
			t.Fatalf("Docker %s: want DOCKER-FORWARD (%v) and a raw PREROUTING drop for %s (%v)", v.Docker, forward, c.IPs[0], rawDrop)
		}
	case testbed.ProfileDebian:
		if forward || rawDrop {
			t.Fatalf("Docker %s: DOCKER-FORWARD (%v) or a raw drop (%v) on Docker 20.10?", v.Docker, forward, rawDrop)
		}
	}
	// Other tests' containers change Docker's chains meanwhile: compare a
	// report taken while iptables saw the same rules before and after it.
	for try := 1; ; try++ {
		want := map[string]bool{}
		before := ""
		for _, table := range []string{"filter", "nat", "raw"} {
			for chain, n := range iptablesChains(t, table) {
				// iptables-nft lists raw's built-in chains even when
				// nobody made the table: only its rules are compared.
				if strings.HasPrefix(chain, "DOCKER") || table == "raw" && chain == "PREROUTING" && n > 0 {
					want[fmt.Sprintf("ip %s %s=%d", table, chain, n)] = true
				}
			}
		}
		before = strings.Join(sortedKeys(want), " ")
		rep := inspectJSON(t, "/proc/2/ns/net")
		got := map[string]bool{}
		if rep.Firewall != nil {
			for _, tb := range rep.Firewall.NFTables {
				for _, ch := range tb.Chains {
					k := fmt.Sprintf("%s %s %s=%d", tb.Family, tb.Name, ch.Name, ch.Rules)
					if tb.Family == "ip" && (strings.HasPrefix(ch.Name, "DOCKER") || tb.Name == "raw" && ch.Name == "PREROUTING" && ch.Rules > 0) {
						got[k] = true
					}
				}
			}
		}
		after := map[string]bool{}
		for _, table := range []string{"filter", "nat", "raw"} {
			for chain, n := range iptablesChains(t, table) {
				// iptables-nft lists raw's built-in chains even when
				// nobody made the table: only its rules are compared.
				if strings.HasPrefix(chain, "DOCKER") || table == "raw" && chain == "PREROUTING" && n > 0 {
					after[fmt.Sprintf("ip %s %s=%d", table, chain, n)] = true
				}
			}
		}
		if before != strings.Join(sortedKeys(after), " ") && try < 5 {
			continue
		}
		sameSet(t, "Docker's chains in the host netns", got, want)
		break
	}
	text, _, _ := run(t, "inspect", "/proc/2/ns/net", "--section", "firewall")
	if want := "DOCKER-FORWARD"; v.Profile == testbed.ProfileCurrent && !strings.Contains(text, want) {
		t.Errorf("text firewall section lacks %s:\n%s", want, text)
	}
}

// TestDockerImageStoreNamespace: Docker 29 keeps its images in its own
// containerd's namespace moby (the containerd image store), beside its
// containers' tasks; Docker 20.10's graph driver keeps none there. Either
// way ls shows a Docker container's netns once, owned by docker and by
// containerd:moby, at the SandboxKey Docker reports, with the container's
// address.
func TestDockerImageStoreNamespace(t *testing.T) {
	v := testbed.LiveVersions(t)
	images := testbed.MustRun(t, "ctr", "--address", testbed.DockerContainerdSock, "-n", "moby", "images", "ls", "-q")
	inStore := false
	for _, ref := range strings.Fields(images) {
		inStore = inStore || ref == testbed.CtrdImage
	}
	if want := v.Profile == testbed.ProfileCurrent; v.ImageStore != want || inStore != want {
		t.Fatalf("Docker %s (storage %s): image store %v, %s in containerd's moby namespace %v; want %v", v.Docker, v.DockerStorage, v.ImageStore, testbed.CtrdImage, inStore, want)
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-store"})
	if !strings.HasPrefix(c.SandboxKey, "/var/run/docker/netns/") {
		t.Errorf("Docker %s: SandboxKey %q, want one under /var/run/docker/netns", v.Docker, c.SandboxKey)
	}
	ino := inodeOf(t, fmt.Sprintf("/proc/%d/ns/net", c.PID))
	row := findRow(lsJSON(t), ino)
	if row == nil {
		t.Fatalf("ls lacks the netns of %s (inode %d)", c.Name, ino)
	}
	var docker, moby int
	for _, o := range row.Owners {
		switch {
		case o.Runtime == "docker" && o.ID == c.ID && o.Name == c.Name:
			docker++
		case o.Runtime == "containerd" && o.Namespace == "moby" && o.ID == c.ID:
			moby++
		}
	}
	// /var/run is a symlink to /run: mountinfo names the real path.
	key, err := filepath.EvalSymlinks(c.SandboxKey)
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, m := range row.Mounts {
		mounted = mounted || m.Path == key
	}
	addr := false
	for _, i := range row.Interfaces {
		for _, a := range i.Addresses {
			addr = addr || strings.HasPrefix(a, c.IPs[0]+"/")
		}
	}
	if docker != 1 || moby != 1 || !mounted || !addr {
		t.Errorf("ls row of %s: docker owners %d, containerd:moby owners %d (want 1 each), mount %s listed %v, address %s listed %v: %+v", c.Name, docker, moby, c.SandboxKey, mounted, c.IPs[0], addr, row)
	}
}
