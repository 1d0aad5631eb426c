package cmd

import "github.com/spf13/cobra"

func init() {
	addCommand(func(*Env) *cobra.Command {
		return &cobra.Command{
			Use:   "targets",
			Short: "How to name a network namespace",
			Long: `A target names a network namespace:

  docker:NAME|ID              a Docker container; unique ID prefixes work as in docker
  podman:NAME|ID              a Podman container, rootful or a rootless user's, through
                              Podman's API service (podman system service)
  containerd:[NAMESPACE/]ID   a containerd container; all containerd namespaces are
                              searched when NAMESPACE is left out
  pod:[NAMESPACE/]NAME        a Kubernetes pod, found through the CRI socket;
                              NAMESPACE defaults to "default"
  pod:NAMESPACE/NAME/CTR      a container of that pod (the netns is still the pod's)
  pid:N  or  N                a process
  netns:NAME                  a name under /var/run/netns (ip netns, CNI's cni-*)
  /absolute/path              a netns file: /var/run/docker/netns/..., /run/netns/...
                              (CNI's cni-*, Podman's netns-*)
  WORD                        a container name, ID prefix or pod name, looked up in
                              every runtime that answers

A bare WORD that matches several network namespaces is an error listing each match
in its prefixed form; matches that share one netns (a Docker container seen again
through containerd's "moby" namespace, a pod's sandbox and its containers) count once.
host-network containers and hostNetwork pods resolve to the host's netns and are
marked "host". A stopped container is an error: it has no network namespace.

Runtimes are found at DOCKER_HOST, CONTAINER_HOST (Podman), CONTAINERD_ADDRESS and
CONTAINER_RUNTIME_ENDPOINT (or --docker-host, --podman-host, --containerd-address,
--cri-endpoint), else at their default sockets (Podman: /run/podman/podman.sock and
every rootless /run/user/UID/podman/podman.sock). A runtime that is absent or does not answer within --timeout is skipped
with a note.`,
		}
	})
	addCommand(func(*Env) *cobra.Command {
		return &cobra.Command{
			Use:   "exit-codes",
			Short: "What nsdebug's exit statuses mean",
			Long: `Exit statuses (all commands but exec and shell):

  0   success
  1   other failure (an unexpected error from the kernel or a runtime);
      diagnose: at least one check FAILed (or WARNed, with --fail-on warn)
  2   invalid input: bad target, flag, name, key or value
  3   not found: no such container, pod, process, netns, link name or sysctl key
  4   ambiguous: the target matches several network namespaces
  5   not running: the container or pod exists but is stopped
  6   not a network namespace: the file is not (or no longer) a netns
  7   insufficient privilege: not root, CAP_SYS_ADMIN/CAP_SYS_PTRACE missing, root
      only of a user namespace (podman unshare), or the kernel refused access (a
      read-only sysctl, /proc/1/ns/net)
  8   runtime unavailable: the runtime a target needs did not answer
  9   refused: the change would touch the host's own netns, replace another
      namespace's link, or remove a runtime's own netns file (use --force)
  10  target changed: the process exited or its PID was reused meanwhile
  11  wrong environment: not in the host's PID namespace, or /proc of another one
  12, 13  kubectl-nsdebug only: helper pod failed, helper pod rejected
  14  protocol mismatch: kubectl-nsdebug and the nsdebug in its helper image
      differ (node-helper)

exec and shell return the command's own status; their own failures are 125,
126 when the command was found but cannot run, 127 when it was not found.`,
		}
	})
}
