# Issue 12: a rootful Podman container resolved through Podman's API service,
# against what a user would otherwise run (podman inspect, the podman CLI
# reading its own storage).
PODMAN_BENCH=$PREFIX-podman
podman run -d --pull=never --label "nsdebug-bench=$PREFIX" --name "$PODMAN_BENCH" localhost/bb:local >/dev/null
compare "resolve podman:X vs podman inspect X" 1 "$NSDEBUG resolve podman:$PODMAN_BENCH" "podman inspect $PODMAN_BENCH"
podman rm -f -t 0 "$PODMAN_BENCH" >/dev/null
