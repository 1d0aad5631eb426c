# Sourced by scripts that make Kubernetes pods through CRI on the test bed
# (bench, examples). Needs $WORK (a scratch directory) set by the caller.
# Defines CTRD_SOCK, CTRD_IMAGE, CRICTL, crictl_ (a configured crictl, as on a
# node) and run_pod NAME NAMESPACE UID, which starts a pod with one container
# "app" (labelled as kubelet labels them) and prints the pod's sandbox ID.
CTRD_SOCK=/run/containerd/containerd.sock
CTRD_IMAGE=docker.io/library/bb:local
CRICTL=$(command -v crictl || true)
if [ -z "$CRICTL" ]; then
	CRICTL=$(go env GOPATH)/bin/crictl
	[ -x "$CRICTL" ] || { echo "installing crictl (go install)" >&2; go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0; }
fi
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$CTRD_SOCK" "$CTRD_SOCK" >"$WORK/crictl.yaml"
crictl_() { "$CRICTL" -c "$WORK/crictl.yaml" "$@"; }

run_pod() { # name namespace uid
	cat >"$WORK/pod-$1.json" <<JSON
{"metadata": {"name": "$1", "namespace": "$2", "uid": "$3"},
 "labels": {"io.kubernetes.pod.name": "$1", "io.kubernetes.pod.namespace": "$2", "io.kubernetes.pod.uid": "$3"},
 "linux": {}}
JSON
	cat >"$WORK/ctr-$1.json" <<JSON
{"metadata": {"name": "app"}, "image": {"image": "$CTRD_IMAGE"}, "command": ["/bin/sleep", "2147483647"],
 "labels": {"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "$1", "io.kubernetes.pod.namespace": "$2"},
 "linux": {}}
JSON
	crictl_ run --no-pull "$WORK/ctr-$1.json" "$WORK/pod-$1.json" >/dev/null 2>"$WORK/crictl.err" || cat "$WORK/crictl.err" >&2
	crictl_ pods --name "$1" --namespace "$2" -q
}
