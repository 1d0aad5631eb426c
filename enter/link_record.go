package enter

// Link records: `nsdebug link` writes down what it linked and for whom, so
// that `unlink --stale` can tell its own leftovers (a link whose container is
// gone) from a namespace an operator made with `ip netns add`, which looks
// the same from the kernel's side (no process, loopback only) but is not
// stale. A record is trusted only while the link still holds the namespace
// it names (dev and inode).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// DefaultLinkStateDir holds one record per link nsdebug made. Under /run:
// records, like the links themselves, do not survive a reboot.
const DefaultLinkStateDir = "/var/run/nsdebug/links"

// LinkOwner is who a link was made for.
type LinkOwner struct {
	// Runtime is docker, containerd, cri, pid, netns or path (the resolver's
	// word); ID is the container's or pod sandbox's ID, the PID, or the
	// netns file's path.
	Runtime   string `json:"runtime"`
	ID        string `json:"id"`
	Namespace string `json:"namespace,omitempty"` // containerd namespace
	Ref       string `json:"ref"`                 // in target syntax, for messages
	// StartTime identifies a pid owner across PID reuse (since boot).
	StartTime time.Duration `json:"start_time,omitempty"`
}

// Key is how the runtimes' listings name this owner ("" for pid and path
// owners): runtime, containerd namespace and ID.
func (o LinkOwner) Key() string {
	switch o.Runtime {
	case "docker", "podman", "containerd", "cri":
		return o.Runtime + ":" + o.Namespace + "/" + o.ID
	}
	return ""
}

// OwnerKey is LinkOwner.Key for a runtime's listing of a container or pod.
func OwnerKey(runtime, namespace, id string) string {
	return runtime + ":" + namespace + "/" + id
}

// LinkRecord is the state file of one link.
type LinkRecord struct {
	Name     string      `json:"name"`
	Path     string      `json:"path"`
	Dev      uint64      `json:"dev"`
	Inode    uint64      `json:"inode"`
	Target   string      `json:"target"`
	Owners   []LinkOwner `json:"owners"`
	LinkedAt time.Time   `json:"linked_at"`
}

func recordPath(stateDir, name string) string {
	return filepath.Join(stateDir, name+".json")
}

// writeRecord stores rec atomically: a reader sees the old record or the new
// one, never half of one.
func writeRecord(stateDir string, rec LinkRecord) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", stateDir, err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(stateDir, ".tmp-"+rec.Name+"-*")
	if err != nil {
		return fmt.Errorf("write link record in %s: %w", stateDir, err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, recordPath(stateDir, rec.Name))
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write link record %s: %w", recordPath(stateDir, rec.Name), werr)
	}
	return nil
}

// readRecord returns the record of name, or nil if there is none (or it
// cannot be read: then the link counts as not nsdebug's, which keeps it).
func readRecord(stateDir, name string) *LinkRecord {
	b, err := os.ReadFile(recordPath(stateDir, name))
	if err != nil {
		return nil
	}
	var rec LinkRecord
	if json.Unmarshal(b, &rec) != nil || rec.Name != name {
		return nil
	}
	return &rec
}

// matches tells whether the record describes the namespace now at its path.
func (r *LinkRecord) matches(id nsfs.ID) bool {
	return r != nil && r.Dev == id.Dev && r.Inode == id.Inode
}

func removeRecord(stateDir, name string) error {
	if err := os.Remove(recordPath(stateDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove link record: %w", err)
	}
	return nil
}
