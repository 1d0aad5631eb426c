package enter

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
)

func TestSafeName(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	cases := []struct{ in, want string }{
		{"web", "web"},
		{"shop_cart-7d9f", "shop_cart-7d9f"},
		{"/web", "web"},    // docker's leading slash
		{"a/b/c", "a-b-c"}, // containerd IDs may hold '/'
		{"line\nbreak", "line-break"},
		{".", ""},
		{"..", ""},
		{"", ""},
		{"///", ""},
		{"a\xffb", "ab"}, // invalid UTF-8 dropped
		{strings.Repeat("x", 300), strings.Repeat("x", 255)},
		{long, strings.Repeat("é", 127)}, // cut on a character boundary
	}
	for _, c := range cases {
		if got := SafeName(c.in); got != c.want {
			t.Errorf("SafeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidateNameIsIproute2s(t *testing.T) {
	for _, n := range []string{"web", "cni-1234", "a.b", "..a", strings.Repeat("n", 255)} {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "a/b", "../x", "/", strings.Repeat("n", 256), "a\nb", "a\x00b"} {
		err := ValidateName(n)
		if !errors.Is(err, nserr.ErrUsage) || strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ValidateName(%q) = %v, want a one-line usage error", n, err)
		}
	}
}

func TestTopMountAt(t *testing.T) {
	ms := []procfs.MountInfo{
		{ID: 27, Parent: 1, MountPoint: "/"},
		{ID: 62, Parent: 27, MountPoint: "/run/netns"},
		{ID: 70, Parent: 62, MountPoint: "/run/netns/a"},
		{ID: 80, Parent: 62, MountPoint: "/run/netns", Shared: true}, // stacked on 62
	}
	top, ok := topMountAt(ms, "/run/netns")
	if !ok || top.ID != 80 {
		t.Errorf("top = %+v %v, want mount 80", top, ok)
	}
	if _, ok := topMountAt(ms, "/var"); ok {
		t.Error("found a mount at /var")
	}
}

// Unlink and --stale on plain files need no root: a temporary directory
// stands in for /var/run/netns.
func TestUnlinkStaleOnPlainEntries(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name string, data string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mk("old-placeholder", "", old)
	mk("young-placeholder", "", time.Now())
	mk("notes", "not a netns", old)
	os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling"))
	os.Symlink(filepath.Join(dir, "notes"), filepath.Join(dir, "to-notes"))
	os.Mkdir(filepath.Join(dir, "subdir"), 0o700)

	dry, err := UnlinkStale(StaleOptions{UnlinkOptions: UnlinkOptions{Dir: dir, DryRun: true}, MinAge: 10 * time.Second, RuntimesComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := removedNames(dry); got != "dangling old-placeholder" {
		t.Errorf("dry run would remove %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dangling")); err != nil {
		t.Errorf("dry run removed something: %v", err)
	}
	rep, err := UnlinkStale(StaleOptions{UnlinkOptions: UnlinkOptions{Dir: dir}, MinAge: 10 * time.Second, RuntimesComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := removedNames(rep); got != "dangling old-placeholder" {
		t.Errorf("removed %q", got)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "notes subdir to-notes young-placeholder" {
		t.Errorf("left %v", names)
	}
	if len(rep.Kept) != 4 {
		t.Errorf("kept %+v, want 4 entries with reasons", rep.Kept)
	}
}

func removedNames(r *StaleReport) string {
	var s []string
	for _, e := range r.Removed {
		s = append(s, e.Name)
	}
	return strings.Join(s, " ")
}

func TestUnlinkRefusesWhatIsNotALink(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(dir, "subdir"), 0o700)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
	os.Symlink("/nowhere", filepath.Join(dir, "dangling"))
	cases := []struct {
		name string
		kind error
	}{
		{"notes", nserr.ErrNotNetns},
		{"subdir", nserr.ErrNotNetns},
		{"missing", nserr.ErrNotFound},
		{"..", nserr.ErrUsage},
		{"a/b", nserr.ErrUsage},
	}
	for _, c := range cases {
		if _, err := Unlink(c.name, UnlinkOptions{Dir: dir}); !errors.Is(err, c.kind) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Unlink(%q) = %v, want %v", c.name, err, c.kind)
		}
	}
	for _, n := range []string{"notes", "subdir"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was touched: %v", n, err)
		}
	}
	// Placeholders and dangling symlinks are what unlink cleans up.
	for _, n := range []string{"empty", "dangling"} {
		if _, err := Unlink(n, UnlinkOptions{Dir: dir}); err != nil {
			t.Errorf("Unlink(%q): %v", n, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s still there", n)
		}
	}
}

// FuzzLinkName: a name the link-name validator accepts always names exactly
// one entry directly inside the netns directory, errors are one usage line,
// and SafeName always yields a valid name (or "").
func FuzzLinkName(f *testing.F) {
	for _, s := range []string{"web", "", ".", "..", "a/b", "../x", "a\nb", "/", "\x00", strings.Repeat("x", 256), "é/é", "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const dir = "/var/run/netns"
		if err := ValidateName(s); err != nil {
			if !errors.Is(err, nserr.ErrUsage) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ValidateName(%q): %v", s, err)
			}
		} else {
			p := filepath.Join(dir, s)
			if filepath.Dir(p) != dir || filepath.Base(p) != s || len(s) > 255 || strings.ContainsAny(s, "\x00\n") {
				t.Fatalf("accepted %q escapes or is unsafe: %q", s, p)
			}
		}
		safe := SafeName(s)
		if safe == "" {
			return
		}
		if err := ValidateName(safe); err != nil {
			t.Fatalf("SafeName(%q) = %q, invalid: %v", s, safe, err)
		}
		if !utf8.ValidString(safe) || SafeName(safe) != safe {
			t.Fatalf("SafeName(%q) = %q is not a fixed point", s, safe)
		}
	})
}

// unlink --stale -o json and the link records: field names are an interface.
func TestStaleAndRecordJSONFieldNames(t *testing.T) {
	rep := StaleReport{
		Removed: []Removed{{Name: "a", Path: "/p/a", Kind: kindNetns, Inode: 7, Reason: "r"}},
		Kept:    []Kept{{Name: "b", Path: "/p/b", Reason: "k"}},
	}
	b, _ := json.Marshal(rep)
	if want := `{"removed":[{"name":"a","path":"/p/a","kind":"netns","inode":7,"reason":"r"}],"kept":[{"name":"b","path":"/p/b","reason":"k"}],"dry_run":false}`; string(b) != want {
		t.Errorf("stale report JSON:\n%s\nwant\n%s", b, want)
	}
	rec := LinkRecord{Name: "n", Path: "/p/n", Dev: 4, Inode: 5, Target: "docker:web", Owners: []LinkOwner{{Runtime: "docker", ID: "abc", Ref: "docker:web"}, {Runtime: "pid", ID: "9", Ref: "pid:9", StartTime: 3}}, LinkedAt: time.Unix(0, 0).UTC()}
	b, _ = json.Marshal(rec)
	if want := `{"name":"n","path":"/p/n","dev":4,"inode":5,"target":"docker:web","owners":[{"runtime":"docker","id":"abc","ref":"docker:web"},{"runtime":"pid","id":"9","ref":"pid:9","start_time":3}],"linked_at":"1970-01-01T00:00:00Z"}`; string(b) != want {
		t.Errorf("link record JSON:\n%s\nwant\n%s", b, want)
	}
}

// A record is written atomically (no temporary file left) and read back;
// one whose name does not match its file is ignored.
func TestLinkRecordRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "links")
	rec := LinkRecord{Name: "web", Path: "/var/run/netns/web", Dev: 1, Inode: 2, Owners: []LinkOwner{{Runtime: "docker", ID: "x", Ref: "docker:web"}}}
	if err := writeRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "web.json" {
		t.Errorf("state dir holds %v", ents)
	}
	got := readRecord(dir, "web")
	if got == nil || !got.matches(nsfs.ID{Dev: 1, Inode: 2}) || got.matches(nsfs.ID{Dev: 1, Inode: 3}) || got.Owners[0].Key() != "docker:/x" {
		t.Errorf("read back %+v", got)
	}
	os.Rename(filepath.Join(dir, "web.json"), filepath.Join(dir, "other.json"))
	if readRecord(dir, "other") != nil {
		t.Error("a record naming another link was trusted")
	}
	if err := removeRecord(dir, "other"); err != nil || removeRecord(dir, "gone") != nil {
		t.Errorf("removeRecord: %v", err)
	}
}
