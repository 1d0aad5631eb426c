package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

type lsRow struct {
	Netns struct {
		Inode uint64 `json:"inode"`
		Path  string `json:"path"`
	} `json:"netns"`
	Host       *bool             `json:"host"`
	Orphaned   *bool             `json:"orphaned"`
	Owners     []json.RawMessage `json:"owners"`
	PIDs       []int             `json:"pids"`
	Interfaces []struct {
		Name      string   `json:"name"`
		Addresses []string `json:"addresses"`
	} `json:"interfaces"`
}

// Case 7: `ls` while 20 containers are created and removed in a loop: no
// crash, valid JSON every time, no duplicate rows, no row missing a field.
func TestCase07_LsWhileContainersChurn(t *testing.T) {
	testbed.Require(t)
	prefix := testbed.UniqueName("rel-churn")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churned atomic.Int64
	// One churning worker: containers are created and removed one after the
	// other. With four in parallel, Debian's Docker 20.10.24 once deadlocked in
	// libnetwork (a sandbox's SetKey waiting for the controller's lock, which an
	// endpoint delete held while waiting for the network's): every later docker
	// run and rm hung, and so did this test until its 30 minute timeout. Each
	// docker call is bounded, so a hung daemon fails the test, not the run.
	const dockerBound = 60 * time.Second
	var dockerHung atomic.Value
	docker := func(args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), dockerBound)
		defer cancel()
		start := time.Now()
		_ = exec.CommandContext(ctx, "docker", args...).Run()
		if ctx.Err() != nil {
			dockerHung.Store(fmt.Sprintf("docker %s did not return within %s (dockerd hung?)", strings.Join(args, " "), time.Since(start).Round(time.Second)))
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if dockerHung.Load() != nil {
				return
			}
			name := fmt.Sprintf("%s-%d", prefix, i%5)
			docker("run", "-d", "--label", "nsdebug-test=1", "--name", name, testbed.Image)
			docker("rm", "-f", name)
			churned.Add(1)
		}
	}()
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name="+prefix).Output()
		for _, id := range splitFields(string(out)) {
			exec.Command("docker", "rm", "-f", id).Run()
		}
	})

	runs := 0
	deadline := time.Now().Add(8 * time.Second)
	for (time.Now().Before(deadline) || churned.Load() < 20) && dockerHung.Load() == nil {
		r := nsdebug(t, "ls", "-o", "json")
		runs++
		if r.code != 0 {
			t.Errorf("ls exit %d: %s", r.code, r.stderr)
			continue
		}
		var rows []lsRow
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("ls -o json is not JSON during churn: %v", err)
		}
		seen := map[uint64]bool{}
		for _, row := range rows {
			if seen[row.Netns.Inode] {
				t.Errorf("netns %d listed twice", row.Netns.Inode)
			}
			seen[row.Netns.Inode] = true
			if row.Netns.Inode == 0 || row.Host == nil || row.Orphaned == nil || row.Owners == nil || row.PIDs == nil || row.Interfaces == nil {
				t.Errorf("partial row: %+v", row)
			}
		}
		if time.Since(deadline) > 30*time.Second {
			break
		}
	}
	close(stop)
	wg.Wait()
	if msg := dockerHung.Load(); msg != nil {
		t.Fatal(msg)
	}
	t.Logf("%d ls runs while %d containers were created and removed", runs, churned.Load())
	if churned.Load() < 20 {
		t.Errorf("only %d containers churned", churned.Load())
	}
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		if r == '\n' || r == ' ' || r == '\t' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}
