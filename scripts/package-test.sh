#!/usr/bin/env bash
# Installs nsdebug's .deb on this machine (dpkg -i), checks that it works
# where each tool looks for it, removes it (dpkg -r, then --purge) and checks
# that nothing it installed is left. Root; run by `make package-test` (CI).
#
#   scripts/package-test.sh build/packages/nsdebug_VERSION_amd64.deb
set -euo pipefail
deb=${1:?usage: package-test.sh PACKAGE.deb}
[ "$(id -u)" = 0 ] || { echo "package-test: must run as root" >&2; exit 1; }
[ -f "$deb" ] || { echo "package-test: no such file: $deb" >&2; exit 1; }
if dpkg-query -W -f '${Status}' nsdebug 2>/dev/null | grep installed >/dev/null; then
	echo "package-test: nsdebug is installed from a package already; not touching it" >&2
	exit 1
fi
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

# What the checks need: man-db (man -w), bash-completion (its loader and
# pkg-config file say where completions go), rpm (reads the .rpm), fish
# (finds vendor completions by itself and can be asked for candidates), zsh.
missing=()
command -v rpm >/dev/null || missing+=(rpm)
command -v fish >/dev/null || missing+=(fish)
command -v zsh >/dev/null || missing+=(zsh)
command -v man >/dev/null || missing+=(man-db)
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
	apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# The .rpm beside the .deb: same files, a version rpm reads.
rpmfile=$(ls "$(dirname "$deb")"/nsdebug-*.rpm 2>/dev/null | head -1)
[ -n "$rpmfile" ] || fail "no .rpm beside $deb"
rpmfiles=$(rpm -qlp "$rpmfile" 2>/dev/null | sort)
debfiles=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort)
[ "$rpmfiles" = "$debfiles" ] || fail "the .rpm and the .deb hold different files: $(diff <(echo "$rpmfiles") <(echo "$debfiles") | head -5)"
rpm -qip "$rpmfile" 2>/dev/null | grep '^License *: Apache-2.0' >/dev/null || fail "rpm -qip shows no Apache-2.0 license"
echo "ok: $(basename "$rpmfile") holds the same $(echo "$rpmfiles" | wc -l) files as the .deb"

purge() { dpkg --purge nsdebug >/dev/null 2>&1 || true; }
trap purge EXIT

dpkg -i "$deb"
mapfile -t listed < <(dpkg -L nsdebug)
[ ${#listed[@]} -gt 10 ] || fail "dpkg -L lists only ${#listed[@]} paths"

# The binary, from PATH.
out=$(nsdebug version) || fail "nsdebug version failed"
[[ $out == "nsdebug "* ]] || fail "nsdebug version printed: $out"
[ "$(command -v nsdebug)" = /usr/bin/nsdebug ] || fail "nsdebug on PATH is $(command -v nsdebug)"
echo "ok: $out"

# Man pages, as man finds them.
for page in nsdebug nsdebug-unlink nsdebug-exit-codes; do
	p=$(man -w "$page") || fail "man -w $page found nothing"
	[[ $p == /usr/share/man/man1/$page.1* ]] || fail "man -w $page: $p"
	echo "ok: man -w $page: $p"
done

# Bash completion, where bash-completion looks, and loaded by it on demand.
compdir=$(pkg-config --variable=completionsdir bash-completion)
[ -f "$compdir/nsdebug" ] || fail "no $compdir/nsdebug"
words=$(bash -c '
	. /usr/share/bash-completion/bash_completion
	__load_completion nsdebug || exit 1
	COMP_WORDS=(nsdebug vers); COMP_CWORD=1; COMP_LINE="nsdebug vers"; COMP_POINT=${#COMP_LINE}
	# compopt complains outside a real completion; the candidates are what count.
	$(complete -p nsdebug | sed -n "s/.*-F \([^ ]*\) .*/\1/p") nsdebug vers nsdebug 2>/dev/null
	echo "${COMPREPLY[*]}"') || fail "bash-completion could not load the completion"
[[ $words == *version* ]] || fail "bash completion of 'nsdebug vers' gave: $words"
echo "ok: bash-completion loads $compdir/nsdebug; 'nsdebug vers<TAB>' gives: $words"

# zsh's compinit finds the file in Debian's vendor-completions (on $fpath)
# and binds it to nsdebug; the shell-driven test (cmd/complete_shells_*)
# types into it.
zhome=$(mktemp -d)
zfile=$(HOME=$zhome zsh -fc 'autoload -Uz compinit && compinit -u -D && whence -v $_comps[nsdebug]' 2>&1) || { rm -rf "$zhome"; fail "zsh: $zfile"; }
rm -rf "$zhome"
[[ $zfile == "_nsdebug is an autoload shell function from /usr/share/zsh/vendor-completions/_nsdebug" ]] || fail "zsh compinit: $zfile"
echo "ok: zsh compinit binds nsdebug to /usr/share/zsh/vendor-completions/_nsdebug"

# Fish finds the file in its vendor_completions.d without set-up.
fishout=$(fish -c 'complete -C "nsdebug ls -o "' 2>&1) || fail "fish: $fishout"
# (fish sorts the candidates)
[ "$(echo "$fishout" | cut -f1 | sort | tr '\n' ' ')" = "json table wide " ] || fail "fish completion of 'nsdebug ls -o ': $fishout"
echo "ok: fish completes 'nsdebug ls -o ' from /usr/share/fish/vendor_completions.d: $(echo "$fishout" | cut -f1 | tr '\n' ' ')"

# The Docker CLI plugin link, where docker looks.
[ "$(readlink /usr/libexec/docker/cli-plugins/docker-nsdebug)" = /usr/bin/nsdebug ] || fail "no Docker CLI plugin link"
if command -v docker >/dev/null; then
	home=$(mktemp -d)
	v=$(HOME=$home docker nsdebug version 2>&1) || { rm -rf "$home"; fail "docker nsdebug version: $v"; }
	rm -rf "$home"
	[[ $v == "nsdebug "* ]] || fail "docker nsdebug version printed: $v"
	echo "ok: docker nsdebug version: $v"
fi

dpkg -r nsdebug >/dev/null
# Without conffiles, -r removes it all; --purge is then a no-op (and says so).
if [ "$(dpkg-query -W -f '${db:Status-Status}' nsdebug 2>/dev/null || true)" = config-files ]; then
	dpkg --purge nsdebug >/dev/null
fi
trap - EXIT
if dpkg-query -W -f '${Status}' nsdebug 2>/dev/null | grep installed >/dev/null; then
	fail "dpkg still lists nsdebug after --purge"
fi
left=()
for p in "${listed[@]}"; do
	# Directories shared with other packages (/usr/bin) stay; everything
	# else the package listed must be gone.
	if [ -L "$p" ] || { [ -e "$p" ] && [ ! -d "$p" ]; }; then
		left+=("$p")
	fi
done
[ -e /usr/share/doc/nsdebug ] && left+=(/usr/share/doc/nsdebug)
[ ${#left[@]} -eq 0 ] || fail "left after dpkg --purge: ${left[*]}"
echo "ok: dpkg -r/--purge removed all ${#listed[@]} listed paths"
