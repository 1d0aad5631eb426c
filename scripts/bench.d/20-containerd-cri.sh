# containerd containers and Kubernetes pods (CRI) against the tools a user
# would otherwise run to find their namespace: ctr and crictl.
# Fixtures: a containerd container in namespace nsdebug-test and a pod with
# one container, both removed at the end of this section.
CTRD_SOCK=/run/containerd/containerd.sock
CTRD_IMAGE=docker.io/library/bb:local
CRICTL=$(command -v crictl || true)
if [ -z "$CRICTL" ]; then
	CRICTL=$(go env GOPATH)/bin/crictl
	[ -x "$CRICTL" ] || { echo "bench: installing crictl (go install)" >&2; go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0; }
fi
# A configured crictl, as on a node (no warnings about a missing config).
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$CTRD_SOCK" "$CTRD_SOCK" >"$WORK/crictl.yaml"
crictl_() { "$CRICTL" -c "$WORK/crictl.yaml" "$@"; }

BENCH_CTRD=$PREFIX-ctrd
ctr --address "$CTRD_SOCK" -n nsdebug-test run -d "$CTRD_IMAGE" "$BENCH_CTRD" /bin/sleep 2147483647 >/dev/null

cat >"$WORK/pod.json" <<EOF
{"metadata": {"name": "$PREFIX-pod", "namespace": "nsdbench", "uid": "$PREFIX-uid"},
 "labels": {"io.kubernetes.pod.name": "$PREFIX-pod", "io.kubernetes.pod.namespace": "nsdbench", "io.kubernetes.pod.uid": "$PREFIX-uid"},
 "linux": {}}
EOF
cat >"$WORK/ctr.json" <<EOF
{"metadata": {"name": "app"}, "image": {"image": "$CTRD_IMAGE"}, "command": ["/bin/sleep", "2147483647"],
 "labels": {"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "$PREFIX-pod", "io.kubernetes.pod.namespace": "nsdbench"},
 "linux": {}}
EOF
crictl_ run --no-pull "$WORK/ctr.json" "$WORK/pod.json" >/dev/null 2>"$WORK/crictl.err" || cat "$WORK/crictl.err" >&2
BENCH_POD_ID=$(crictl_ pods --name "$PREFIX-pod" -q)

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
