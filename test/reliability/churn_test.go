package reliability

import (
	"encoding/json"
	"fmt"
	"os/exec"
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
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%d-%d", prefix, w, i%5)
				exec.Command("docker", "run", "-d", "--label", "nsdebug-test=1", "--name", name, testbed.Image).Run()
				exec.Command("docker", "rm", "-f", name).Run()
				churned.Add(1)
			}
		}(w)
	}
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name="+prefix).Output()
		for _, id := range splitFields(string(out)) {
			exec.Command("docker", "rm", "-f", id).Run()
		}
	})

	runs := 0
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) || churned.Load() < 20 {
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
