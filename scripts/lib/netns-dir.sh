# shellcheck shell=bash
# Makes /run/netns a shared mount point of its own before any runtime puts a
# netns there (sourced by testbed.sh and testbed-kube.sh; log comes from them).
# `ip netns add` does the same on its first use, but done late, its bind of
# /run/netns onto itself hides the nsfs mounts runtimes made there earlier: their
# files then read as plain files (CNI teardown fails with "unknown FS magic",
# `ip netns del` with "busy"). Done first, every later mount stays visible.
share_netns_dir() {
	mkdir -p /run/netns
	if ! mountpoint -q /run/netns; then
		if grep -E -- ' /run/netns/[^ ]+ ' /proc/self/mountinfo >/dev/null; then
			log "/run/netns holds netns mounts but is no mount point: left as it is (binding it now would hide them)"
			return 0
		fi
		mount --bind /run/netns /run/netns
	fi
	mount --make-rshared /run/netns
}
