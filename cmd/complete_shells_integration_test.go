package cmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// The generated completion scripts, in the shells themselves: each shell is
// set up with the README's own line for it, a command line is typed into an
// interactive shell on a terminal (zsh's zpty module drives zsh and bash
// alike), TAB is pressed, and what the shell's completion system offered and
// what it put into the line are compared with the test bed's runtimes. This
// is what `__complete` alone does not show: the quoting of target names with
// a colon in them (zsh's _describe, bash's COMP_WORDBREAKS), NoSpace, and
// that the script finds the binary and parses its answer.

// zptyDriver runs one interactive shell on a pseudo-terminal: it sources the
// init file ($INIT), waits for it to say ready, types $LINE and a TAB, waits
// for the completion to say done, then presses C-x p, which the init file
// binds to writing the edited line to $OUT/buf.
const zptyDriver = `
zmodload zsh/zpty || exit 2
drain() { local junk; while zpty -rt z junk 2>/dev/null; do print -rn -- "$junk" >> $OUT/pty.log; done }
waitfor() {
	local i
	for i in {1..150}; do
		[[ -e $1 ]] && return 0
		drain; sleep 0.1
	done
	print -r -- "driver: no $1; the terminal showed:" >&2; cat $OUT/pty.log >&2; return 1
}
zpty z "$SHELLCMD" || exit 2
zpty -w z "source ${(q)INIT}"
waitfor $OUT/ready || exit 1
zpty -w -n z "$LINE"$'\t'
waitfor $OUT/done || exit 1
zpty -w -n z $'\x18p'
waitfor $OUT/buf || exit 1
# C-u, exit: a shell that exits by itself is gone at once (HUP takes seconds).
zpty -w z $'\x15exit'
zpty -d z
`

// zshInit: the README's zsh set-up (the script written into the first
// directory of $fpath, compinit), then a compadd that also records the
// matches it adds (-A: after matching the typed prefix, as zsh offers them)
// and the messages it shows (-x: cobra's ActiveHelp).
const zshInit = `
PS1='' RPROMPT=''
# No listing under the prompt: on a busy host zsh would first ask whether to
# show hundreds of candidates and take the next key as the answer.
unsetopt auto_list
fpath=($DIR $fpath)
nsdebug completion zsh > "${fpath[1]}/_nsdebug"
autoload -Uz compinit && compinit -u -d $DIR/zcompdump
compadd() {
	if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi
	local x=${@[(i)-x]}
	(( x < $# )) && print -r -- "${@[x+1]}" >> $OUT/help
	local -a __m
	builtin compadd -A __m "$@"
	(( $#__m )) && print -rl -- "${__m[@]}" >> $OUT/words
	builtin compadd "$@"
}
__nsdbg_done() { : > $OUT/done }
comppostfuncs=(__nsdbg_done)
__nsdbg_buf() { print -r -- "$BUFFER" > $OUT/buf }
zle -N __nsdbg_buf
bindkey '^Xp' __nsdbg_buf
: > $OUT/ready
`

// bashInit: bash-completion and the README's bash line (source <(...)),
// then cobra's __start_nsdebug wrapped to record COMPREPLY.
const bashInit = `
PS1='' PS2=''
. /usr/share/bash-completion/bash_completion
source <(nsdebug completion bash)
eval "$(declare -f __start_nsdebug | sed '1s/__start_nsdebug/__nsdbg_orig/')"
__start_nsdebug() { __nsdbg_orig "$@"; local s=$?; printf '%s\n' "${COMPREPLY[@]}" > $OUT/words; : > $OUT/done; return $s; }
bind -x '"\C-xp": printf "%s\n" "$READLINE_LINE" > $OUT/buf'
: > $OUT/ready
`

// shellResult is what one TAB in a real shell gave.
type shellResult struct {
	words []string // the candidates the shell's completion system holds
	line  string   // the command line after the TAB
	help  string   // zsh: the messages shown under the line (compadd -x)
}

func (r shellResult) has(w string) bool { return contains2(r.words, w) }

// tabInShell types line and a TAB into an interactive shell ("zsh" or
// "bash") set up by its init script, with the test's nsdebug first on PATH.
func tabInShell(t *testing.T, shell, line string) shellResult {
	t.Helper()
	bin := nsdebugBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	init, cmdline := zshInit, "zsh -f -i"
	if shell == "bash" {
		init, cmdline = bashInit, "bash --norc --noprofile -i"
	}
	initFile := filepath.Join(dir, "init."+shell)
	if err := os.WriteFile(initFile, []byte(init), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	drv := exec.CommandContext(ctx, "zsh", "-f", "-c", zptyDriver)
	drv.Env = append(os.Environ(),
		"PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"TERM=xterm", "HOME="+dir, "DIR="+dir, "OUT="+out, "INIT="+initFile,
		"SHELLCMD="+cmdline, "LINE="+line)
	if b, err := drv.CombinedOutput(); err != nil {
		t.Fatalf("%s: TAB after %q: %v\n%s", shell, line, err, b)
	}
	words, _ := os.ReadFile(filepath.Join(out, "words"))
	help, _ := os.ReadFile(filepath.Join(out, "help"))
	buf, err := os.ReadFile(filepath.Join(out, "buf"))
	if err != nil {
		t.Fatal(err)
	}
	var r shellResult
	for _, l := range strings.Split(string(words), "\n") {
		// bash's list may carry cobra's "(description)" after the word.
		if f := strings.Fields(l); len(f) > 0 {
			r.words = append(r.words, f[0])
		}
	}
	r.line = strings.TrimSuffix(string(buf), "\n")
	r.help = string(help)
	return r
}

// TestCompleteInZshAndBash: `nsdebug exec <TAB>` in a real zsh and a real
// bash offers the test bed's container, pod and netns in target syntax (and
// only Docker containers docker ps lists), and a unique prefix is completed
// in the line as the target's name, colon and all.
func TestCompleteInZshAndBash(t *testing.T) {
	testbed.Require(t)
	for _, sh := range []string{"zsh", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("%s is not installed (apt-get install %s): %v", sh, sh, err)
		}
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "cmpl-sh"})
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: testbed.UniqueName("cmpl-sh")})
	ns := testbed.NewNetNS(t, "cmpl-sh")

	for _, sh := range []string{"zsh", "bash"} {
		t.Run(sh, func(t *testing.T) {
			t0 := time.Now()
			dockerBefore := lines(testbed.MustRun(t, "docker", "ps", "--format", "{{.Names}}"))
			all := tabInShell(t, sh, "nsdebug exec ")
			dockerAfter := lines(testbed.MustRun(t, "docker", "ps", "--format", "{{.Names}}"))
			// Others' fixtures come and go meanwhile (the test bed is shared):
			// what docker started during the TAB was there to be offered too.
			dockerAfter = append(dockerAfter, lines(testbed.MustRun(t, "docker", "events", "--filter", "type=container", "--filter", "event=start",
				"--since", strconv.FormatInt(t0.Unix()-1, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--format", "{{.Actor.Attributes.name}}"))...)
			for _, w := range []string{"docker:" + c.Name, c.Name, pod.Ref(), "netns:" + ns.Name, "pid:"} {
				if !all.has(w) {
					t.Errorf("nsdebug exec <TAB> lacks %q; the shell has %q", w, all.words)
				}
			}
			for _, w := range all.words {
				if name, ok := strings.CutPrefix(w, "docker:"); ok && !contains2(dockerBefore, name) && !contains2(dockerAfter, name) {
					t.Errorf("offered %s, which docker ps does not list", w)
				}
			}
			if all.line != "nsdebug exec " {
				t.Errorf("several candidates, yet the line became %q", all.line)
			}

			for _, tc := range []struct{ typed, want string }{
				{"nsdebug exec docker:" + c.Name[:len(c.Name)-2], "nsdebug exec docker:" + c.Name + " "},
				{"nsdebug inspect " + pod.Ref()[:len(pod.Ref())-3], "nsdebug inspect " + pod.Ref() + " "},
				{"nsdebug resolve netns:" + ns.Name[:len(ns.Name)-1], "nsdebug resolve netns:" + ns.Name + " "},
				// NoSpace: a key is not followed by a space (KEY=VALUE may come).
				{"nsdebug sysctl " + c.Name + " net.core.somaxc", "nsdebug sysctl " + c.Name + " net.core.somaxconn"},
				{"nsdebug ls -o js", "nsdebug ls -o json "},
			} {
				if got := tabInShell(t, sh, tc.typed); got.line != tc.want {
					t.Errorf("%q<TAB> made the line %q, want %q (candidates %q)", tc.typed, got.line, tc.want, got.words)
				}
			}

			if sh != "zsh" {
				return
			}
			// Docker silent: zsh still offers the pod, shows the hint
			// naming Docker under the line, and the line is untouched.
			sock := testbed.SilentSocket(t)
			typed := "nsdebug --docker-host unix://" + sock + " exec "
			down := tabInShell(t, sh, typed)
			if !down.has(pod.Ref()) || down.has("docker:"+c.Name) {
				t.Errorf("Docker silent: candidates %q, want %s and not docker:%s", down.words, pod.Ref(), c.Name)
			}
			if !strings.Contains(down.help, "docker at unix://"+sock) {
				t.Errorf("Docker silent: zsh showed %q, want a hint naming docker at unix://%s", down.help, sock)
			}
			if down.line != typed {
				t.Errorf("Docker silent: the line became %q", down.line)
			}
		})
	}
}

// TestCompleteInFish: the README's fish line (the script in
// ~/.config/fish/completions), then fish's own completion of command lines.
func TestCompleteInFish(t *testing.T) {
	testbed.Require(t)
	if _, err := exec.LookPath("fish"); err != nil {
		t.Fatalf("fish is not installed (apt-get install fish): %v", err)
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "cmpl-fish"})
	ns := testbed.NewNetNS(t, "cmpl-fish")
	bin := nsdebugBinary(t)
	home := t.TempDir()
	fish := func(script string) string {
		cmd := exec.Command("fish", "-c", script)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME=", "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish -c %q: %v\n%s", script, err, b)
		}
		return string(b)
	}
	fish("mkdir -p ~/.config/fish/completions; nsdebug completion fish > ~/.config/fish/completions/nsdebug.fish")
	// fish loads the script from there on first use of the command.
	cands := func(line string) []string {
		var ws []string
		for _, l := range strings.Split(strings.TrimSpace(fish("complete -C "+shellQuote(line))), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				ws = append(ws, w)
			}
		}
		return ws
	}
	all := cands("nsdebug exec ")
	for _, w := range []string{"docker:" + c.Name, c.Name, "netns:" + ns.Name, "pid:"} {
		if !contains2(all, w) {
			t.Errorf("fish: nsdebug exec <TAB> lacks %q: %q", w, all)
		}
	}
	if got := cands("nsdebug exec docker:" + c.Name[:len(c.Name)-2]); strings.Join(got, " ") != "docker:"+c.Name {
		t.Errorf("fish: docker:<prefix><TAB> = %q, want only docker:%s", got, c.Name)
	}
	// NoSpace in fish: cobra's script adds the word again with a dot, so
	// that fish inserts their common prefix without a space.
	if got := cands("nsdebug sysctl " + c.Name + " net.core.somaxc"); strings.Join(got, " ") != "net.core.somaxconn net.core.somaxconn." {
		t.Errorf("fish: net.core.somaxc<TAB> = %q", got)
	}
}

// shellQuote quotes s for fish and POSIX shells alike (single quotes; no
// single quote or backslash in what the tests type).
func shellQuote(s string) string { return "'" + s + "'" }
