package resolver

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Name is one target the host offers now (shell completion): the prefixed
// form, the bare word that would name it alone ("" when the word also names
// something else), and a short description.
type Name struct {
	Target string
	Bare   string
	Desc   string
}

// Names lists what a target can name right now: running Docker, Podman and
// containerd containers, ready pods and the names under the netns
// directory. A bare word is offered where it names one target alone (with
// Options.BareWord, one of that runtime's). Every runtime is asked side by side, each bounded by the
// resolver's timeout; the whole call returns when ctx ends, with what has
// answered by then. failures say which runtime could not be listed, and why.
func (r *Resolver) Names(ctx context.Context) (names []Name, failures []string) {
	type answer struct {
		b     Backend
		cands []Candidate
		err   error
	}
	bs := r.Backends()
	ch := make(chan answer, len(bs))
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, r.Timeout())
			defer cancel()
			var cands []Candidate
			var err error
			if bl, ok := b.(BriefLister); ok {
				cands, err = bl.ListBrief(cctx) // one call; no PIDs needed
			} else {
				cands, err = b.List(cctx)
			}
			if err != nil && cctx.Err() != nil {
				err = fmt.Errorf("did not answer within %s", r.Timeout())
			}
			ch <- answer{b, cands, err}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var answers []answer
	for waiting := len(bs); waiting > 0; {
		select {
		case a := <-ch:
			answers = append(answers, a)
			waiting--
		case <-ctx.Done():
			for _, b := range bs {
				if !answeredBy(answers, func(a answer) bool { return a.b == b }) {
					failures = append(failures, b.Name()+" at "+b.Endpoint()+": did not answer in time")
				}
			}
			waiting = 0
		}
	}
	dockerAnswered := answeredBy(answers, func(a answer) bool { return a.b.Name() == "docker" && a.err == nil })

	words := map[string]int{}
	add := func(target, word, desc string) {
		if r.opts.BareWord != "" && !strings.HasPrefix(target, string(r.opts.BareWord)+":") {
			word = "" // a bare word names only that runtime's (Docker CLI plugin)
		}
		names = append(names, Name{Target: target, Bare: word, Desc: desc})
		if word != "" {
			words[word]++
		}
	}
	seen := map[string]bool{}
	for _, a := range answers {
		if a.err != nil {
			failures = append(failures, a.b.Name()+" at "+a.b.Endpoint()+": "+a.err.Error())
			continue
		}
		for _, c := range a.cands {
			switch c.Runtime {
			case "docker":
				add("docker:"+c.Name, c.Name, "Docker container "+shortID(c.ID)+describeNet(c))
			case "podman":
				add("podman:"+c.Name, c.Name, "Podman container "+shortID(c.ID)+describeNet(c))
			case "containerd":
				// Docker's containers are containerd's moby tasks, and
				// kubelet's are pods: each is offered once, as itself.
				if c.Pod != nil || c.Namespace == "k8s.io" || (c.Namespace == "moby" && dockerAnswered) {
					continue
				}
				add("containerd:"+c.Namespace+"/"+c.ID, c.ID, "containerd container")
			case "cri":
				if c.Pod == nil {
					continue
				}
				ref := "pod:" + c.Pod.Namespace + "/" + c.Pod.Name
				if seen[ref] {
					continue // the same pod through a second CRI socket
				}
				seen[ref] = true
				add(ref, c.Pod.Name, "Kubernetes pod "+shortID(c.ID)+describeNet(c))
			}
		}
	}
	for i := range names {
		if words[names[i].Bare] != 1 {
			names[i].Bare = ""
		}
	}
	if ents, err := os.ReadDir(r.NetnsDir()); err == nil {
		for _, e := range ents {
			names = append(names, Name{Target: "netns:" + e.Name(), Desc: "named netns in " + r.NetnsDir()})
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return names[i].Target < names[j].Target })
	sort.Strings(failures)
	return names, failures
}

func answeredBy[T any](as []T, f func(T) bool) bool {
	for _, a := range as {
		if f(a) {
			return true
		}
	}
	return false
}

func describeNet(c Candidate) string {
	if c.HostNetwork {
		return " (host network)"
	}
	return ""
}

// Process is a running process, for completing pid: targets.
type Process struct {
	PID     int
	Command string
}

// Processes lists the processes under procRoot with their command names
// (comm). Needs no privilege: /proc/PID/comm is world-readable.
func Processes(procRoot string) []Process {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(procRoot + "/" + e.Name() + "/comm")
		if err != nil {
			continue // exited meanwhile
		}
		out = append(out, Process{PID: pid, Command: strings.TrimSpace(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}
