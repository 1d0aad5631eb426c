# containerd containers and Kubernetes pods (CRI) against the tools a user
# would otherwise run to find their namespace: ctr and crictl.
# Fixtures: a containerd container in namespace nsdebug-test and a pod with
# one container, both removed at the end of this section.
# shellcheck source=../lib/crictl.sh
. scripts/lib/crictl.sh

BENCH_CTRD=$PREFIX-ctrd
ctr --address "$CTRD_SOCK" -n nsdebug-test run -d "$CTRD_IMAGE" "$BENCH_CTRD" /bin/sleep 2147483647 >/dev/null

BENCH_POD_ID=$(run_pod "$PREFIX-pod" nsdbench "$PREFIX-uid")

if [ -n "$BENCH_POD_ID" ]; then
	compare "resolve containerd:NS/ID vs ctr tasks ls" 1 "$NSDEBUG resolve containerd:nsdebug-test/$BENCH_CTRD" "ctr --address $CTRD_SOCK -n nsdebug-test tasks ls"
	compare "resolve pod:NS/NAME vs crictl inspectp" 1 "$NSDEBUG resolve pod:nsdbench/$PREFIX-pod" "$CRICTL -c $WORK/crictl.yaml inspectp $BENCH_POD_ID"
	compare "resolve POD-NAME (every runtime) vs crictl inspectp" 1 "$NSDEBUG resolve $PREFIX-pod" "$CRICTL -c $WORK/crictl.yaml inspectp $BENCH_POD_ID"
fi

for id in $BENCH_POD_ID; do
	crictl_ stopp "$id" >/dev/null
	crictl_ rmp "$id" >/dev/null
done
ctr --address "$CTRD_SOCK" -n nsdebug-test tasks kill -s KILL "$BENCH_CTRD" >/dev/null 2>&1 || true
for _ in $(seq 50); do ctr --address "$CTRD_SOCK" -n nsdebug-test tasks rm "$BENCH_CTRD" >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$CTRD_SOCK" -n nsdebug-test containers rm "$BENCH_CTRD" >/dev/null
