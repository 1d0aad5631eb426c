#!/usr/bin/env bash
# Runs the integration and reliability suites on each test bed profile in
# turn (default: debian, then current), bringing each up with
# scripts/testbed.sh (which stops the other first), and always ends with the
# debian profile live again, as the rest of CI and the kube test bed expect.
#
#   scripts/test-profiles.sh [PROFILE...]
# Needs root and NSDEBUG_BIN (make test-profiles sets it).
set -uo pipefail
cd "$(dirname "$0")/.."
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(debian current)
: "${NSDEBUG_BIN:?set NSDEBUG_BIN to the nsdebug binary under test}"
GO=${GO:-go}
TESTFLAGS=${TESTFLAGS:--count=1 -timeout 30m -p 1}

back_to_debian() {
	if [ "$(scripts/testbed.sh status 2>/dev/null | sed -n 's/^profile: //p')" != debian ]; then
		echo "test-profiles: switching back to the debian profile" >&2
		TESTBED=debian scripts/testbed.sh >/dev/null || echo "test-profiles: could not bring the debian profile back" >&2
	fi
}
trap back_to_debian EXIT

rc=0
summary=()
for p in "${profiles[@]}"; do
	t0=$SECONDS
	echo "=== profile $p: test bed" >&2
	if ! TESTBED=$p scripts/testbed.sh; then
		summary+=("$p: test bed did not come up"); rc=1; continue
	fi
	t1=$SECONDS
	echo "=== profile $p: integration tests" >&2
	# shellcheck disable=SC2086 # TESTFLAGS are words
	# The pcap-filter compiler and the kubectl plugin (whose cluster has a
	# containerd of its own) face no profile's runtimes: the first pass covers them.
	NSDEBUG_BIN=$NSDEBUG_BIN $GO test $TESTFLAGS $($GO list ./... | grep -v -e /test/reliability -e /capture/filter -e '/kube$') || { rc=1; summary+=("$p: integration tests FAILED"); }
	echo "=== profile $p: reliability suite" >&2
	# shellcheck disable=SC2086
	NSDEBUG_BIN=$NSDEBUG_BIN $GO test $TESTFLAGS -v ./test/reliability || { rc=1; summary+=("$p: reliability suite FAILED"); }
	summary+=("$p: test bed $((t1 - t0)) s, tests $((SECONDS - t1)) s")
done
printf 'test-profiles: %s\n' "${summary[@]}" >&2
exit $rc
