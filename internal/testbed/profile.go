package testbed

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Test bed profiles (scripts/testbed.sh): Debian 12's runtimes or today's.
const (
	ProfileDebian  = "debian"  // Docker 20.10, containerd 1.6, runc 1.1
	ProfileCurrent = "current" // Docker 29, containerd 2.x, runc 1.5
)

// profileFile is where scripts/testbed.sh records the profile it brought up.
const profileFile = "/var/lib/nsdebug-testbed/profile"

// Versions are the live test bed's runtime versions, from the daemons.
type Versions struct {
	Profile       string
	Docker        string // server version, e.g. 20.10.24+dfsg1 or v2.0.0-beta.24
	DockerAPI     string // e.g. 1.41
	DockerAPIMin  string // the oldest API the daemon accepts
	Containerd    string // the standalone (CRI) containerd, e.g. 1.6.20 or v2.4.2
	DockerStorage string // "overlay2" or the containerd image store's snapshotter
	ImageStore    bool   // Docker keeps images in its containerd (namespace moby)
}

var (
	versionsOnce sync.Once
	versions     Versions
	versionsErr  string
)

// LiveVersions asks the daemons what they are and checks that the profile
// the test bed script recorded is the one running: tests that assert
// profile-specific behaviour must know which runtimes they face.
func LiveVersions(t testing.TB) Versions {
	t.Helper()
	Require(t)
	versionsOnce.Do(func() {
		out, err := Run("docker", "version", "-f", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
		f := strings.Fields(out)
		if err != nil || len(f) != 3 {
			versionsErr = "docker version: " + out
			return
		}
		versions.Docker, versions.DockerAPI, versions.DockerAPIMin = f[0], f[1], f[2]
		out, err = Run("docker", "info", "-f", "{{.Driver}} {{json .DriverStatus}}")
		if err != nil {
			versionsErr = "docker info: " + out
			return
		}
		versions.DockerStorage = strings.Fields(out)[0]
		versions.ImageStore = strings.Contains(out, "io.containerd.snapshotter")
		out, err = Run("ctr", "--address", ContainerdSock, "version")
		if err != nil {
			versionsErr = "ctr version: " + out
			return
		}
		if _, server, ok := strings.Cut(out, "Server:"); ok {
			for _, line := range strings.Split(server, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
					versions.Containerd = strings.TrimSpace(v)
					break
				}
			}
		}
		b, _ := os.ReadFile(profileFile)
		versions.Profile = strings.TrimSpace(string(b))
		// Docker 20.10 speaks API 1.41; Docker 28+ 1.50 and later.
		minor, _ := strconv.Atoi(strings.TrimPrefix(versions.DockerAPI, "1."))
		want := ProfileDebian
		if minor >= 50 {
			want = ProfileCurrent
		}
		if versions.Profile == "" {
			versions.Profile = want // set up by an older scripts/testbed.sh
		}
		// containerd 2 on the current profile (its CRI config, sandbox
		// info and netns handling differ from 1.6's).
		if c2 := strings.HasPrefix(strings.TrimPrefix(versions.Containerd, "v"), "2."); c2 != (want == ProfileCurrent) {
			versionsErr = "profile " + want + " (Docker API " + versions.DockerAPI + ") with containerd " + versions.Containerd
			return
		}
		if versions.Profile != want {
			versionsErr = "the test bed records profile " + strconv.Quote(versions.Profile) + " but dockerd speaks API " + versions.DockerAPI + " (profile " + want + ")"
		}
	})
	if versionsErr != "" {
		t.Fatalf("test bed versions: %s", versionsErr)
	}
	return versions
}
