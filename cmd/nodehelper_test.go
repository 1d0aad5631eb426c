package cmd

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/version"
)

// version -o json: the field names kubectl-nsdebug and scripts read.
func TestVersionJSON(t *testing.T) {
	stdout, _, code := run(t, "version", "-o", "json")
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"commit", "date", "go", "platform", "protocol", "version"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	if m["protocol"] != float64(version.Protocol) {
		t.Errorf("protocol %v", m["protocol"])
	}
}

// node-helper refuses another protocol at once with exit 14 and one line
// naming both; with the right one it idles until --until.
func TestNodeHelperProtocol(t *testing.T) {
	_, stderr, code := run(t, "node-helper", "--protocol", strconv.Itoa(version.Protocol+1))
	if code != 14 || !strings.Contains(stderr, "speaks protocol "+strconv.Itoa(version.Protocol)) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("mismatch: %d %q", code, stderr)
	}
	start := time.Now()
	stdout, stderr, code := run(t, "node-helper", "--protocol", strconv.Itoa(version.Protocol), "--until", time.Now().Add(1500*time.Millisecond).UTC().Format(time.RFC3339))
	if code != 0 || !strings.Contains(stdout, "node helper, protocol") {
		t.Errorf("match: %d %q %q", code, stdout, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idled %s past --until", d)
	}
}
