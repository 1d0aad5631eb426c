#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME. A crasher lands in the package's
# testdata/fuzz/NAME and fails the run. Go 1.26's fuzz coordinator can also
# fail a target with a bare "context deadline exceeded" at the end of
# -fuzztime, with no input to blame (golang/go#75804, fixed in Go 1.27): that
# one result, with no new file written, is reported as the toolchain's and
# not as a failure. Any other failure fails the run.
#
# FUZZMINIMIZETIME caps how long the fuzzer minimizes each input. Its default
# (60 s) applies to every new interesting input too, and while a worker
# minimizes, it fuzzes nothing: FuzzCompile ran 4,447-54,377 inputs in 45 s
# with it and 137,360-165,669 with 5 s. Crashers here are short expressions;
# 5 s minimizes them well enough.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-15s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
TAGS=${TAGS:-}
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "fuzz $dir $f ($FUZZTIME)"
		corpus=$dir/testdata/fuzz/$f
		before=$( (find "$corpus" -type f 2>/dev/null || true) | wc -l)
		log=$(mktemp)
		rc=0
		$GO test -tags "$TAGS" -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$dir" 2>&1 | tee "$log" || rc=$?
		after=$( (find "$corpus" -type f 2>/dev/null || true) | wc -l)
		if [ "$rc" != 0 ] && [ "$after" = "$before" ] &&
			grep -q '^    context deadline exceeded$' "$log"; then
			echo "fuzz: $f: Go's fuzz coordinator ended with \"context deadline exceeded\" and wrote no failing input (golang/go#75804, Go $($GO env GOVERSION)): not a finding" >&2
			rc=0
		fi
		rm -f "$log"
		[ "$rc" = 0 ] || { echo "fuzz: $f failed (see $corpus)" >&2; exit "$rc"; }
	done
done
