// Command man writes nsdebug's man pages, one per command of the cobra tree
// (spf13/cobra/doc), into a directory: `make man` runs it.
//
//	go run ./internal/tools/man -dir build/man -version v1.2.3
//
// The date in the pages is SOURCE_DATE_EPOCH's (reproducible builds), else
// today's.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/nsdebug/nsdebug/cmd"
)

func main() {
	dir := flag.String("dir", "build/man", "directory to write the pages into")
	ver := flag.String("version", "", "version shown in the pages' footer")
	flag.Parse()
	if err := run(*dir, *ver); err != nil {
		fmt.Fprintf(os.Stderr, "man: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, ver string) error {
	date := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	root := cmd.NewRootCmd(&cmd.Env{IO: cmd.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: os.Stderr}})
	// Added by cobra only when it executes; the pages should list it.
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	source := "nsdebug"
	if ver != "" {
		source += " " + ver
	}
	header := &doc.GenManHeader{Title: "NSDEBUG", Section: "1", Source: source, Manual: "nsdebug manual", Date: &date}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return err
	}
	// GenManTree leaves out help topics (targets, exit-codes): they get
	// pages too, so that `man nsdebug-exit-codes` works.
	for _, c := range root.Commands() {
		if !c.IsAdditionalHelpTopicCommand() {
			continue
		}
		f, err := os.Create(filepath.Join(dir, "nsdebug-"+c.Name()+".1"))
		if err != nil {
			return err
		}
		h := *header
		err = doc.GenMan(c, &h, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
