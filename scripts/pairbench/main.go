// Command pairbench times two commands interleaved, A B A B ..., and prints
// the median of the per-pair ratios A/B with each side's median. Interleaved
// pairs see the same machine load, which hyperfine's blocks (all runs of A,
// then all of B) do not on a shared, noisy host. Used by scripts/bench.sh.
//
//	pairbench [-n 30] [-w 3] [-json FILE] 'A' ['B']
//
// A and B are one argument each, as with hyperfine: run directly (split on spaces) unless
// they hold shell syntax, then through /bin/sh -c. Without B only A is timed.
// Every run's stdout and stderr go to /dev/null; a run that fails (non-zero
// exit) stops the benchmark with its command on stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

type result struct {
	A      float64   `json:"a_ms"` // medians
	B      float64   `json:"b_ms,omitempty"`
	Ratio  float64   `json:"ratio,omitempty"` // median of A_i/B_i
	Pairs  int       `json:"pairs"`
	ARuns  []float64 `json:"a_runs_ms"`
	BRuns  []float64 `json:"b_runs_ms,omitempty"`
	Ratios []float64 `json:"ratios,omitempty"`
}

func main() {
	n := flag.Int("n", 30, "pairs to time")
	warm := flag.Int("w", 3, "untimed warm-up pairs")
	out := flag.String("json", "", "write every run to this file as JSON")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) < 1 || len(cmds) > 2 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: pairbench [-n N] [-w N] [-json FILE] 'A' ['B']")
		os.Exit(2)
	}
	argvs := make([][]string, len(cmds))
	for i, c := range cmds {
		argvs[i] = argv(c)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	var res result
	for i := 0; i < *warm+*n; i++ {
		var d [2]float64
		for j, av := range argvs {
			d[j], err = run(av, devnull)
			if err != nil {
				fail(fmt.Errorf("%s: %w", cmds[j], err))
			}
		}
		if i < *warm {
			continue
		}
		res.ARuns = append(res.ARuns, d[0])
		if len(argvs) == 2 {
			res.BRuns = append(res.BRuns, d[1])
			res.Ratios = append(res.Ratios, d[0]/d[1])
		}
	}
	res.Pairs = *n
	res.A = median(res.ARuns)
	if len(argvs) == 2 {
		res.B, res.Ratio = median(res.BRuns), median(res.Ratios)
		fmt.Printf("%.2f ms  %.2f ms  %.3fx\n", res.A, res.B, res.Ratio)
	} else {
		fmt.Printf("%.2f ms\n", res.A)
	}
	if *out != "" {
		b, _ := json.Marshal(res)
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fail(err)
		}
	}
}

// argv runs c directly when it is a plain word list, as hyperfine -N does:
// a shell's own start-up would be counted on that side.
func argv(c string) []string {
	if strings.ContainsAny(c, ";|&<>()$`'\"*?{}\\") {
		return []string{"/bin/sh", "-c", c}
	}
	f := strings.Fields(c)
	if p, err := exec.LookPath(f[0]); err == nil {
		f[0] = p
	}
	return f
}

// run starts av with the standard streams on /dev/null and returns the wall
// time from fork to reaping, in milliseconds.
func run(av []string, devnull *os.File) (float64, error) {
	fd := devnull.Fd()
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{fd, fd, fd}}
	start := time.Now()
	pid, err := syscall.ForkExec(av[0], av, attr)
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return 0, fmt.Errorf("exit status %v", ws)
	}
	return float64(d.Nanoseconds()) / 1e6, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pairbench:", err)
	os.Exit(1)
}
