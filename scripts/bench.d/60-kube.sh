# Issue 9: kubectl nsdebug on the test bed's cluster (make testbed-kube),
# side by side with the anchor doing the same job: kubectl debug node/N
# running the command in a node pod, then deleting that pod. kubectl exec is
# recorded for scale (it needs the tools in the pod's own image).
# Sourced by scripts/bench.sh (compare, $OUT, $WORK, $RUNS).
KUBE_KUBECONFIG=${KUBE_KUBECONFIG:-/etc/nsdebug-testbed/kubeconfig}
KUBE_NODE=${KUBE_NODE:-nsdebug-node}
KUBE_NS=nsdebug-test
if [ ! -r "$KUBE_KUBECONFIG" ] || ! KUBECONFIG=$KUBE_KUBECONFIG kubectl get node "$KUBE_NODE" >/dev/null 2>&1; then
	echo "| kube: kubectl nsdebug | SKIPPED: no test-bed cluster (make testbed-kube) | | | | FAILED |" >>"$OUT"
	FAILS=$((FAILS+1))
	tail -1 "$OUT"
else
	export KUBECONFIG=$KUBE_KUBECONFIG
	export PATH="$(dirname "$NSDEBUG"):$PATH"
	KUBE_POD=nsdbench-$$
	kubectl -n $KUBE_NS run "$KUBE_POD" --image=docker.io/library/bb:local --image-pull-policy=Never \
		--overrides="{\"spec\":{\"nodeName\":\"$KUBE_NODE\",\"terminationGracePeriodSeconds\":0}}" --labels=nsdebug-bench=1 \
		--command -- sleep 3600 >/dev/null
	kubectl -n $KUBE_NS wait --for=jsonpath='{.status.phase}'=Running "pod/$KUBE_POD" --timeout=60s >/dev/null
	# kubectl debug node/N, and what it leaves to its user: wait for the
	# command, read its output, delete the pod.
	cat >"$WORK/kdebug.sh" <<SH
#!/bin/sh
set -e
p=\$(kubectl -n $KUBE_NS debug "node/$KUBE_NODE" --profile=general --image=docker.io/library/bb:local --image-pull-policy=Never -- true 2>&1 | sed -n 's/.*debugging pod \([^ ]*\).*/\1/p')
[ -n "\$p" ] || { echo "no debug pod" >&2; exit 1; }
kubectl -n $KUBE_NS wait --for=jsonpath='{.status.phase}'=Succeeded "pod/\$p" --timeout=60s >/dev/null
kubectl -n $KUBE_NS logs "\$p" >/dev/null
kubectl -n $KUBE_NS delete pod "\$p" --grace-period=0 --force >/dev/null 2>&1
SH
	chmod +x "$WORK/kdebug.sh"
	KRUNS=${BENCH_KUBE_RUNS:-10}
	RUNS=$KRUNS compare "kube: kubectl nsdebug POD -- true vs kubectl debug node/N -- true + delete its pod" 1 \
		"kubectl nsdebug -n $KUBE_NS $KUBE_POD -- true" "$WORK/kdebug.sh"
	RUNS=$KRUNS compare "kube: kubectl nsdebug POD -- true vs kubectl exec POD -- true (tools in the pod's image)" - \
		"kubectl nsdebug -n $KUBE_NS $KUBE_POD -- true" "kubectl -n $KUBE_NS exec $KUBE_POD -- true" report
	# Time to the command's first byte of output (helper created and
	# running, nsdebug started on the node).
	python3 - "$KUBE_NS" "$KUBE_POD" "$KRUNS" >>"$OUT" <<'PY'
import subprocess, sys, time
ns, pod, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
ttfb = []
for _ in range(runs):
    t0 = time.monotonic()
    p = subprocess.Popen(["kubectl", "nsdebug", "-n", ns, pod, "--", "echo", "x"], stdout=subprocess.PIPE)
    first = p.stdout.read(1)
    ttfb.append((time.monotonic() - t0) * 1000)
    p.stdout.read()
    # A failed run (no plugin, no helper) reads EOF at once: never a time.
    if p.wait() != 0 or first != b"x":
        sys.exit(f"bench: kubectl nsdebug -- echo x exited {p.returncode}, first byte {first!r}")
ttfb.sort()
print(f"| kube: time to first byte of kubectl nsdebug POD -- echo (median of {runs}) | {ttfb[len(ttfb)//2]:.1f} | - | - | - | info |")
PY
	tail -1 "$OUT"
	kubectl -n $KUBE_NS delete pod "$KUBE_POD" --grace-period=0 --force >/dev/null 2>&1 || true
	left=$(kubectl get pods -A -l app.kubernetes.io/managed-by=nsdebug -o name)
	[ -z "$left" ] || { echo "bench: helper pods left: $left" >&2; FAILS=$((FAILS+1)); }
fi
