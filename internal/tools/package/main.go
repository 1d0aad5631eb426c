// Command package builds nsdebug's .deb and .rpm with nFPM used as a Go
// library (no download of a packaging tool): `make package` stages an
// install tree (make install PREFIX=/usr DESTDIR=...) and runs this on it.
//
//	go run . -root ../../../build/pkgroot -out ../../../build/packages -readme README.md -license LICENSE
//
// It lives in a module of its own so that nFPM's dependencies stay out of
// nsdebug's go.mod. The version comes from git: a tag vX.Y.Z gives X.Y.Z
// (commits after it: X.Y.Z+gitN.SHA), no tag gives 0.0.0~gitYYYYMMDD.SHA,
// which sorts before any release in both dpkg and rpm.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

func main() {
	root := flag.String("root", "", "staged install tree (DESTDIR of make install PREFIX=/usr)")
	out := flag.String("out", "build/packages", "directory for the packages")
	readme := flag.String("readme", "README.md", "README to ship in /usr/share/doc/nsdebug")
	license := flag.String("license", "LICENSE", "license to ship in /usr/share/doc/nsdebug")
	formats := flag.String("formats", "deb,rpm", "package formats")
	version := flag.String("version", "", "package version (default: from git)")
	arch := flag.String("arch", "amd64", "architecture (Go's name)")
	flag.Parse()
	if err := run(*root, *out, *readme, *license, *formats, *version, *arch); err != nil {
		fmt.Fprintf(os.Stderr, "package: %v\n", err)
		os.Exit(1)
	}
}

func run(root, out, readme, license, formats, version, arch string) error {
	if root == "" {
		return fmt.Errorf("-root is required")
	}
	for _, f := range []string{readme, license} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	mtime, err := commitTime()
	if err != nil {
		return err
	}
	if version == "" {
		if version, err = gitVersion(); err != nil {
			return err
		}
	}
	contents, err := stagedContents(root, mtime)
	if err != nil {
		return err
	}
	for _, d := range []struct{ src, dst string }{{readme, "README.md"}, {license, "LICENSE"}} {
		contents = append(contents, &files.Content{
			Source: d.src, Destination: "/usr/share/doc/nsdebug/" + d.dst,
			FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime},
		})
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, format := range strings.Split(formats, ",") {
		info := &nfpm.Info{
			Name:          "nsdebug",
			Arch:          arch,
			Platform:      "linux",
			Version:       version,
			VersionSchema: "none", // already in a form dpkg and rpm order correctly
			Release:       "1",
			Section:       "admin",
			Priority:      "optional",
			Maintainer:    "nsdebug maintainers <nsdebug@localhost>",
			Vendor:        "nsdebug",
			Homepage:      "https://github.com/nsdebug/nsdebug",
			License:       "Apache-2.0",
			Description: "find any container's network namespace and work inside it\n" +
				"nsdebug finds the network namespace of a Docker or containerd container,\n" +
				"a Kubernetes pod or a process, and runs the host's tools inside it.",
			MTime:        mtime,
			Overridables: nfpm.Overridables{Contents: contents, Umask: 0o022},
		}
		info = nfpm.WithDefaults(info)
		if err := nfpm.PrepareForPackager(info, format); err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		p, err := nfpm.Get(format)
		if err != nil {
			return err
		}
		name := filepath.Join(out, p.ConventionalFileName(info))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		err = p.Package(info, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return fmt.Errorf("%s: %w", format, err)
		}
		fmt.Println(name)
	}
	return nil
}

// stagedContents lists every file and symlink under root as package
// contents at the same path below /.
func stagedContents(root string, mtime time.Time) (files.Contents, error) {
	var cs files.Contents
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dst := "/" + filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			cs = append(cs, &files.Content{Source: target, Destination: dst, Type: files.TypeSymlink})
			return nil
		}
		cs = append(cs, &files.Content{Source: path, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: info.Mode().Perm(), MTime: mtime}})
		return nil
	})
	if err == nil && len(cs) == 0 {
		err = fmt.Errorf("%s holds no files (run make install DESTDIR=%s first)", root, root)
	}
	return cs, err
}

var tagVersion = regexp.MustCompile(`^v(\d+\.\d+\.\d+)(?:-(\d+)-g([0-9a-f]+))?$`)

func gitVersion() (string, error) {
	if d, err := git("describe", "--tags", "--match", "v[0-9]*.[0-9]*.[0-9]*"); err == nil {
		m := tagVersion.FindStringSubmatch(d)
		if m == nil {
			return "", fmt.Errorf("tag %q is not vX.Y.Z", d)
		}
		if m[2] == "" {
			return m[1], nil
		}
		return m[1] + "+git" + m[2] + "." + m[3], nil
	}
	sha, err := git("rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "", err
	}
	day, err := git("log", "-1", "--format=%cd", "--date=format:%Y%m%d")
	if err != nil {
		return "", err
	}
	return "0.0.0~git" + day + "." + sha, nil
}

// commitTime is SOURCE_DATE_EPOCH, else HEAD's commit time: the same tree
// gives the same package.
func commitTime() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		var err error
		if s, err = git("log", "-1", "--format=%ct"); err != nil {
			return time.Time{}, err
		}
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
