#!/usr/bin/env bash
# A real one-node Kubernetes for nsdebug's integration tests (issue 9).
#
#   scripts/testbed-kube.sh [up]     build (first run only), start what is not running, verify
#   scripts/testbed-kube.sh status   print the state of each part
#   scripts/testbed-kube.sh down     stop kubelet, apiserver, etcd and the kubelet's containerd
#   scripts/testbed-kube.sh build    only build the binaries into the cache
#
# Binaries are built from the Go module proxy at pinned versions and cached under
# /var/cache/nsdebug-testbed/<component>-<version>/, so only a machine's first run builds.
set -euo pipefail
# (With pipefail, `cmd | grep -q` fails when grep exits at the first match and
# cmd dies of SIGPIPE; so pipes end in `grep ... >/dev/null` here.)

K8S_VERSION=v1.34.4
# k8s.io/kubernetes's go.mod replaces each staging module (k8s.io/api, ...) with a
# directory of its own repository; outside it they must be replaced by the published
# v0.<minor>.<patch> of the same release.
STAGING_VERSION=v0.34.4
ETCD_VERSION=v3.6.16

CACHE=${NSDEBUG_TESTBED_CACHE:-/var/cache/nsdebug-testbed}
ETC=/etc/nsdebug-testbed
LOGS=/var/log/nsdebug-testbed
RUN=/run/nsdebug-kube
STATE=/var/lib/nsdebug-kube

export PATH=/usr/local/go/bin:$PATH
# A build cache of its own: its growth is the testbed's alone (several GB for
# Kubernetes), and it can be removed once the binaries are cached.
GOCACHE_KUBE=$CACHE/gocache

log() { echo "testbed-kube: $*" >&2; }
# shellcheck source=lib/netns-dir.sh
. "$(dirname "$0")/lib/netns-dir.sh"
die() { echo "testbed-kube: $*" >&2; exit 1; }

bin_dir() { echo "$CACHE/$1-$2"; }

# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

# The wrapper module for Kubernetes: require k8s.io/kubernetes and replace every
# staging module its go.mod points at ./staging/ by the published version.
k8s_wrapper() {
	local dir=$CACHE/src/kubernetes-$K8S_VERSION
	if [ -f "$dir/.ready" ]; then echo "$dir"; return; fi
	mkdir -p "$dir"
	local gomod
	gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
	[ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION's go.mod"
	{
		echo "module nsdebug.local/kubebuild"
		echo
		echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		grep -oE '^\s*k8s\.io/[a-z0-9._/-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u |
			while read -r m; do echo "replace $m => $m $STAGING_VERSION"; done
	} >"$dir/go.mod"
	# main packages cannot be imported (no tools.go), so the builds use -mod=mod
	# and resolve the rest of go.mod and go.sum themselves.
	touch "$dir/.ready"
	echo "$dir"
}

k8s_ldflags() {
	local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	local f="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f="$f -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		f="$f -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$f"
}

build_k8s() { # build_k8s NAME (kube-apiserver, kubelet)
	local name=$1 out dir
	out=$(bin_dir "$name" "$K8S_VERSION")
	[ -x "$out/$name" ] && return 0
	dir=$(k8s_wrapper)
	log "building $name $K8S_VERSION (first run on this machine; minutes)"
	local t0=$SECONDS
	mkdir -p "$out"
	(cd "$dir" && GOCACHE=$GOCACHE_KUBE CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(k8s_ldflags)" \
		-o "$out/$name.tmp" "k8s.io/kubernetes/cmd/$name")
	mv "$out/$name.tmp" "$out/$name"
	log "built $name in $((SECONDS - t0)) s"
}

# etcd's server module has replace directives of its own (so `go install` refuses
# it); inside a wrapper that requires it they are ignored and the versions it
# requires are used.
build_etcd() {
	local out; out=$(bin_dir etcd "$ETCD_VERSION")
	[ -x "$out/etcd" ] && return 0
	local dir=$CACHE/src/etcd-$ETCD_VERSION
	mkdir -p "$dir" "$out"
	if [ ! -f "$dir/go.mod" ]; then
		printf 'module nsdebug.local/etcdbuild\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
	fi
	log "building etcd $ETCD_VERSION (first run on this machine)"
	local t0=$SECONDS
	(cd "$dir" && GOCACHE=$GOCACHE_KUBE CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
		-o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
	mv "$out/etcd.tmp" "$out/etcd"
	log "built etcd in $((SECONDS - t0)) s"
}

build_all() {
	mkdir -p "$CACHE"
	# One at a time: the machine's cores are shared.
	build_etcd
	build_k8s kube-apiserver
	build_k8s kubelet
}

ETCD=$(bin_dir etcd "$ETCD_VERSION")/etcd
APISERVER=$(bin_dir kube-apiserver "$K8S_VERSION")/kube-apiserver
KUBELET=$(bin_dir kubelet "$K8S_VERSION")/kubelet

# ---------------------------------------------------------------------------
# Layout (everything the cluster owns; nothing shared with scripts/testbed.sh
# except /var/run/netns, where both containerds put their cni-* files)
# ---------------------------------------------------------------------------

NODE=nsdebug-node
PKI=$ETC/kube/pki
KUBECONFIG_ADMIN=$ETC/kubeconfig
KUBECONFIG_KUBELET=$ETC/kube/kubelet.kubeconfig
ETCD_PORT=12379          # client; peer is 12380 (not 2379/2380: leave those to a real etcd)
APISERVER_PORT=16443
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
KUBELET_HEALTHZ_PORT=10348
# The node's IP is the gateway address of the cluster's own CNI bridge: the
# kubelet refuses a loopback node IP, and this keeps its API (port 10250)
# off the host's real interfaces.
BRIDGE=nsdbg-kube0
POD_CIDR=10.98.0.0/16
NODE_IP=10.98.0.1
SERVICE_CIDR=10.97.0.0/24

# Debian's containerd 1.6 (kubelet 1.34 still supports 1.6); full paths, so a
# newer containerd elsewhere on PATH is not picked up.
CONTAINERD=/usr/bin/containerd
CTR=/usr/bin/ctr
CTRD_SOCK=$RUN/containerd/containerd.sock
CTRD_CONF=$ETC/kube/containerd.toml
CNI_DIR=$ETC/kube/cni
KUBELET_ROOT=$STATE/kubelet
BB_IMAGE=docker.io/library/bb:local
# Namespaces the tests use: without a controller manager no namespace can be
# deleted (nothing would empty it), so they are fixed and made here.
TEST_NAMESPACES="nsdebug-test nsdebug-restricted"

KUBECTL=(kubectl --kubeconfig "$KUBECONFIG_ADMIN")

# ---------------------------------------------------------------------------
# Certificates (a CA of our own, kept across runs)
# ---------------------------------------------------------------------------

mkcert() { # mkcert NAME SUBJECT EKU [SAN]
	local name=$1 subj=$2 eku=$3 san=${4:-}
	[ -s "$PKI/$name.crt" ] && return 0
	local ext; ext=$(mktemp)
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -n "$san" ] && echo "subjectAltName=$san"
	} >"$ext"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$ext" "$PKI/$name.csr"
}

make_pki() {
	mkdir -p "$PKI"; chmod 700 "$PKI"
	if [ ! -s "$PKI/ca.crt" ]; then
		openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -days 3650 \
			-subj "/CN=nsdebug-testbed-ca" -out "$PKI/ca.crt" 2>/dev/null
	fi
	mkcert apiserver "/CN=kube-apiserver" serverAuth \
		"IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	# The apiserver's client certificate towards the kubelet (exec, logs,
	# port-forward); the kubelet authorizes it through the apiserver (webhook).
	mkcert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
	mkcert admin "/O=system:masters/CN=nsdebug-admin" clientAuth
	mkcert kubelet-client "/O=system:nodes/CN=system:node:$NODE" clientAuth
	mkcert kubelet-serving "/CN=$NODE" serverAuth "IP:$NODE_IP,DNS:$NODE"
	if [ ! -s "$PKI/sa.key" ]; then
		openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
		openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	fi
}

kubeconfig() { # kubeconfig FILE USER CERTNAME
	local f=$1 user=$2 c=$3
	cat >"$f.tmp" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: nsdebug-testbed
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$c.crt")
    client-key-data: $(base64 -w0 "$PKI/$c.key")
contexts:
- name: nsdebug-testbed
  context: {cluster: nsdebug-testbed, user: $user}
current-context: nsdebug-testbed
YAML
	chmod 600 "$f.tmp"; mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

# pids_of CMD: PIDs whose command line starts with CMD (a binary and maybe args;
# full paths: nothing else on the host runs the cached binaries).
pids_of() { pgrep -f "^$1( |$)" || true; }

running() { [ -n "$(pids_of "$1")" ]; }

start() { # start NAME BINARY ARGS...
	local name=$1; shift
	log "starting $name"
	setsid nohup "$@" >>"$LOGS/kube-${name#kube-}.log" 2>&1 </dev/null &
}

wait_for() { # seconds, description, command...
	local n=$(($1 * 10)) what=$2; shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	die "$what did not come up within $1 s; see $LOGS/kube-*.log"
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep '"health":"true"' >/dev/null; }
apiserver_healthy() { curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$APISERVER_URL/readyz" | grep -x ok >/dev/null; }
ctrd_healthy() { "$CTR" --address "$CTRD_SOCK" version; }
kubelet_healthy() { curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" | grep -x ok >/dev/null; }

start_etcd() {
	running "$ETCD" && etcd_healthy && return 0
	mkdir -p "$STATE/etcd"; chmod 700 "$STATE/etcd"
	running "$ETCD" || start etcd "$ETCD" --name nsdebug --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
		--initial-cluster nsdebug=http://127.0.0.1:12380 --unsafe-no-fsync --log-level warn
	wait_for 30 etcd etcd_healthy
}

start_apiserver() {
	running "$APISERVER" && apiserver_healthy && return 0
	running "$APISERVER" || start kube-apiserver "$APISERVER" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
		--advertise-address "$NODE_IP" --endpoint-reconciler-type none \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--allow-privileged=true \
		--authorization-mode Node,RBAC \
		--client-ca-file "$PKI/ca.crt" \
		--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$PKI/ca.crt" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" \
		--service-account-signing-key-file "$PKI/sa.key" \
		--profiling=false --v 1
	wait_for 90 kube-apiserver apiserver_healthy
}

make_bridge() {
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
	fi
	ip -4 addr show dev "$BRIDGE" | grep "inet $NODE_IP/" >/dev/null || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
}

write_containerd_config() {
	mkdir -p "$CNI_DIR/net.d" "$(dirname "$CTRD_SOCK")" "$STATE/containerd"
	cat >"$CNI_DIR/net.d/10-nsdebug-kube.conflist.tmp" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "nsdebug-kube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni-ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	mv "$CNI_DIR/net.d/10-nsdebug-kube.conflist.tmp" "$CNI_DIR/net.d/10-nsdebug-kube.conflist"
	# Debian's containerd 1.6 defaults, with: its own socket, root, state, runc
	# root and CNI directory; the test bed's image as sandbox ("pause") image;
	# restrict_oom_score_adj because this host lacks CAP_SYS_RESOURCE.
	"$CONTAINERD" config default |
		sed -e "s#^root = .*#root = \"$STATE/containerd\"#" \
			-e "s#^state = .*#state = \"$RUN/containerd/state\"#" \
			-e "/^\[grpc\]/,/^\[/ s#^  address = .*#  address = \"$CTRD_SOCK\"#" \
			-e "/^\[ttrpc\]/,/^\[/ s#^  address = .*#  address = \"$CTRD_SOCK.ttrpc\"#" \
			-e "s#sandbox_image = .*#sandbox_image = \"$BB_IMAGE\"#" \
			-e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
			-e 's#bin_dir = "/opt/cni/bin"#bin_dir = "/usr/lib/cni"#' \
			-e "s#conf_dir = \"/etc/cni/net.d\"#conf_dir = \"$CNI_DIR/net.d\"#" \
			-e "s#path = \"/opt/containerd\"#path = \"$STATE/containerd-opt\"#" \
			-e "/runtimes.runc.options\]/,/^ *\[/ s#^\( *\)Root = .*#\1Root = \"$RUN/runc\"#" \
			>"$CTRD_CONF.tmp"
	grep -q "address = \"$CTRD_SOCK\"" "$CTRD_CONF.tmp" || die "containerd config: grpc address not set"
	grep -q "Root = \"$RUN/runc\"" "$CTRD_CONF.tmp" || die "containerd config: runc root not set"
	mv "$CTRD_CONF.tmp" "$CTRD_CONF"
}

start_containerd() {
	write_containerd_config
	if running "$CONTAINERD --config $CTRD_CONF" && ctrd_healthy >/dev/null 2>&1; then return 0; fi
	if ! running "$CONTAINERD --config $CTRD_CONF"; then
		rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
		start containerd "$CONTAINERD" --config "$CTRD_CONF"
	fi
	wait_for 30 "the kubelet's containerd" ctrd_healthy
}

import_images() {
	if ! "$CTR" --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -x "$BB_IMAGE" >/dev/null; then
		docker image inspect bb:local >/dev/null 2>&1 || die "docker image bb:local missing: run scripts/testbed.sh (make testbed) first"
		log "importing $BB_IMAGE"
		docker save bb:local | "$CTR" --address "$CTRD_SOCK" -n k8s.io images import - >/dev/null
	fi
	# The nsdebug image (make image): imported when its tag is missing, and
	# for a -dirty VERSION (one tag, changing code) whenever docker holds a
	# different build under it. (Every make build differs in its build date,
	# so a clean VERSION's image is not imported again for that alone.)
	if [ -n "${NSDEBUG_IMAGE:-}" ]; then
		local want id stamp=$STATE/nsdebug-image.imported
		want=docker.io/${NSDEBUG_IMAGE#docker.io/}
		id=$(docker image inspect -f '{{.Id}}' "$NSDEBUG_IMAGE") || die "docker image $NSDEBUG_IMAGE missing: run make image"
		if { [ "${want%-dirty}" != "$want" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want $id" ]; } ||
			! "$CTR" --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -x "$want" >/dev/null; then
			log "importing $want"
			local tar=${NSDEBUG_IMAGE_TAR:-}
			if [ -n "$tar" ] && [ -s "$tar" ]; then
				"$CTR" --address "$CTRD_SOCK" -n k8s.io images import "$tar" >/dev/null
			else
				docker save "$NSDEBUG_IMAGE" | "$CTR" --address "$CTRD_SOCK" -n k8s.io images import - >/dev/null
			fi
			echo "$want $id" >"$stamp"
		fi
		# Other VERSIONs' tags stay: worktrees of other versions share the
		# cluster, and image GC is off (a tag costs about 20 MB).
	fi
}

write_kubelet_config() { # to FILE
	mkdir -p "$KUBELET_ROOT" "$STATE/pod-logs"
	cat >"$1" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CTRD_SOCK
imageServiceEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
# No eviction and no image GC: this host is shared, nothing here may go
# away because the disk or memory looks full to the kubelet. ("0%" switches a
# signal off; an empty map could be taken for "unset" and get the defaults.)
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# No KUBE-IPTABLES-HINT / KUBE-FIREWALL chains (and no jump from INPUT/OUTPUT)
# on a host whose iptables Docker manages.
makeIPTablesUtilChains: false
# Lowering its own OOM score needs CAP_SYS_RESOURCE, which this host lacks.
oomScoreAdj: 0
podLogsDir: $STATE/pod-logs
volumePluginDir: $STATE/volume-plugins
staticPodPath: ""
registerNode: true
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 110
featureGates:
  # With cgroupsPerQOS false there are no pod cgroups, and the in-place
  # resize path of SyncPod (beta, on by default in 1.34) dereferences the
  # missing pod cgroup config: the kubelet panicked on pods with resources.
  InPlacePodVerticalScaling: false
YAML
}

# The kubelet sets six kernel sysctls at start (vm.overcommit_memory=1,
# kernel.panic=10, kernel.panic_on_oops=1, ...) unless they already have
# those values. On a shared host it must not: it runs in a mount namespace of
# its own where files with the values it wants are bind-mounted over those
# /proc/sys entries, so it reads them and changes nothing. Its own mounts (pod
# volumes under its root dir) reach the host, where containerd needs them,
# through a shared bind mount of that directory.
KUBELET_SYSCTLS="vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000"

kubelet_root_shared() {
	if ! findmnt -n -o PROPAGATION --mountpoint "$KUBELET_ROOT" 2>/dev/null | grep shared >/dev/null; then
		findmnt -n --mountpoint "$KUBELET_ROOT" >/dev/null 2>&1 || mount --bind "$KUBELET_ROOT" "$KUBELET_ROOT"
		mount --make-shared "$KUBELET_ROOT"
	fi
}

start_kubelet() {
	local conf=$ETC/kube/kubelet.yaml
	write_kubelet_config "$conf.new"
	# A kubelet started with an older configuration (an older copy of this
	# script) is restarted with this one.
	if running "$KUBELET" && ! cmp -s "$conf.new" "$conf"; then
		log "kubelet configuration changed: restarting the kubelet"
		stop_pids "$(pids_of "$KUBELET")"
	fi
	mv "$conf.new" "$conf"
	if running "$KUBELET" && kubelet_healthy; then return 0; fi
	kubelet_root_shared
	mkdir -p "$STATE/sysctl"
	local binds="" kv
	for kv in $KUBELET_SYSCTLS; do
		mkdir -p "$(dirname "$STATE/sysctl/${kv%%=*}")"
		echo "${kv#*=}" >"$STATE/sysctl/${kv%%=*}"
		binds="$binds mount --bind $STATE/sysctl/${kv%%=*} /proc/sys/${kv%%=*} &&"
	done
	running "$KUBELET" || start kubelet unshare --mount --propagation unchanged -- sh -c \
		"$binds exec $KUBELET --config $conf --kubeconfig $KUBECONFIG_KUBELET \
		--hostname-override $NODE --node-ip $NODE_IP --root-dir $KUBELET_ROOT --cert-dir $KUBELET_ROOT/pki --v 1"
	wait_for 60 kubelet kubelet_healthy
}

# ---------------------------------------------------------------------------
# Objects a controller manager would make (there is none)
# ---------------------------------------------------------------------------

bootstrap_objects() {
	local m; m=$(bootstrap_manifest)
	# Once made they stay (nothing here deletes them): a get is quicker than
	# an apply, which reads and patches each object.
	"${KUBECTL[@]}" get -f - -o name <<<"$m" >/dev/null 2>&1 && return 0
	"${KUBECTL[@]}" apply -f - <<<"$m" >/dev/null
}

bootstrap_manifest() {
	local ca; ca=$(sed 's/^/    /' "$PKI/ca.crt")
	{
		cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: nsdebug-test
  labels: {pod-security.kubernetes.io/enforce: privileged}
---
apiVersion: v1
kind: Namespace
metadata:
  name: nsdebug-restricted
  labels: {pod-security.kubernetes.io/enforce: restricted}
YAML
		for ns in default kube-system kube-public $TEST_NAMESPACES; do
			cat <<YAML
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: $ns}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-root-ca.crt, namespace: $ns}
data:
  ca.crt: |
$ca
YAML
		done
	}
}

# ---------------------------------------------------------------------------
# Verification: node Ready, a pod Running on it, kubectl exec into it
# ---------------------------------------------------------------------------

verify() {
	# kubectl wait fails at once on a node not registered yet (a new
	# machine's first start: no Node object in etcd until the kubelet
	# has made one).
	wait_for 120 "node $NODE's registration" "${KUBECTL[@]}" get "node/$NODE"
	"${KUBECTL[@]}" wait --for=condition=Ready "node/$NODE" --timeout=120s >/dev/null ||
		die "node $NODE not Ready; see $LOGS/kube-kubelet.log"
	local pod=testbed-check-$$
	"${KUBECTL[@]}" -n nsdebug-test apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $pod, labels: {app.kubernetes.io/name: nsdebug-testbed-check}}
spec:
  nodeName: $NODE
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - {name: main, image: $BB_IMAGE, imagePullPolicy: Never, command: [sleep, "3600"]}
YAML
	local ok=0 out="" errf
	errf=$(mktemp)
	if "${KUBECTL[@]}" -n nsdebug-test wait --for=jsonpath='{.status.phase}'=Running "pod/$pod" --timeout=60s >/dev/null; then
		# stdout alone: kubectl's websocket client may log a harmless
		# "Unknown stream id 1, discarding message" on stderr.
		out=$("${KUBECTL[@]}" -n nsdebug-test exec "$pod" -- echo exec-ok 2>"$errf") || true
		[ "$out" = exec-ok ] && ok=1
		[ "$ok" = 1 ] || out="$out $(tr '\n' ' ' <"$errf")"
	fi
	rm -f "$errf"
	"${KUBECTL[@]}" -n nsdebug-test delete pod "$pod" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
	[ "$ok" = 1 ] || die "test pod did not run or kubectl exec failed (${out:-pod not Running}); see $LOGS/kube-kubelet.log"
}

# ---------------------------------------------------------------------------

status() {
	local rc=0
	for b in etcd:"$ETCD" kube-apiserver:"$APISERVER" kubelet:"$KUBELET"; do
		local n=${b%%:*} p=${b#*:}
		if [ ! -x "$p" ]; then echo "$n: not built ($p)"; rc=1
		elif running "$p"; then echo "$n: running (pid $(pids_of "$p" | head -1), $p)"
		else echo "$n: NOT running"; rc=1; fi
	done
	if ctrd_healthy >/dev/null 2>&1; then echo "containerd: running at $CTRD_SOCK"; else echo "containerd: NOT running ($CTRD_SOCK)"; rc=1; fi
	if [ -s "$KUBECONFIG_ADMIN" ] && apiserver_healthy 2>/dev/null; then
		echo "apiserver: $APISERVER_URL ready (kubeconfig $KUBECONFIG_ADMIN)"
		echo "node: $("${KUBECTL[@]}" get node "$NODE" --no-headers 2>&1 | awk '{print $1, $2, $5}')"
		echo "pods: $("${KUBECTL[@]}" get pods -A --no-headers 2>/dev/null | wc -l)"
	else
		echo "apiserver: NOT ready"; rc=1
	fi
	if ctrd_healthy >/dev/null 2>&1; then
		echo "images: $("$CTR" --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
	fi
	return $rc
}

up() {
	[ "$(id -u)" = 0 ] || die "must run as root (try: sudo make testbed-kube)"
	mkdir -p "$LOGS" "$STATE" "$RUN" "$ETC/kube"
	build_all
	make_pki
	kubeconfig "$KUBECONFIG_ADMIN" nsdebug-admin admin
	kubeconfig "$KUBECONFIG_KUBELET" "system:node:$NODE" kubelet-client
	start_etcd
	start_apiserver
	bootstrap_objects
	make_bridge
	share_netns_dir
	start_containerd
	import_images
	start_kubelet
	verify
	status
}

# Pod objects first (so a later `up` does not bring them back), then the
# kubelet; then every container of its containerd with its netns; then
# containerd, the apiserver and etcd; then every mount left.
down() {
	[ "$(id -u)" = 0 ] || die "must run as root"
	if [ -s "$KUBECONFIG_ADMIN" ] && apiserver_healthy >/dev/null 2>&1; then
		"${KUBECTL[@]}" delete pods --all-namespaces --all --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
	fi
	stop_pids "$(pids_of "$KUBELET")"
	if ctrd_healthy >/dev/null 2>&1; then
		local id netns
		for id in $("$CTR" --address "$CTRD_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
			netns=$("$CTR" --address "$CTRD_SOCK" -n k8s.io containers info --spec "$id" 2>/dev/null |
				sed -n 's#.*"path": *"\(/var/run/netns/cni-[^"]*\)".*#\1#p' | head -1)
			"$CTR" --address "$CTRD_SOCK" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true
			"$CTR" --address "$CTRD_SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
			"$CTR" --address "$CTRD_SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
			if [ -n "$netns" ] && [ -e "$netns" ]; then
				umount "$netns" 2>/dev/null || true
				rm -f "$netns"
			fi
		done
	fi
	stop_pids "$(pids_of "$CONTAINERD --config $CTRD_CONF")"
	# Shims outlive containerd; theirs name its socket in their arguments.
	stop_pids "$(pgrep -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK( |$)" || true)"
	stop_pids "$(pids_of "$APISERVER")"
	stop_pids "$(pids_of "$ETCD")"
	findmnt -rn -o TARGET | grep -E "^($KUBELET_ROOT|$STATE/containerd|$RUN)(/|$)" | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	rm -rf "$STATE/cni-ipam" # every address is free again: no pod is left
	# The kubelet's device-plugin socket has a fixed path outside its root dir.
	rm -f /var/lib/kubelet/device-plugins/kubelet.sock
	rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
	ip link del "$BRIDGE" 2>/dev/null || true
	rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
	log "down"
}

stop_pids() { # stop_pids "PID...": TERM, then KILL after 10 s
	local pids=$1
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null || true
	local p
	for _ in $(seq 100); do
		for p in $pids; do kill -0 "$p" 2>/dev/null && break; p=; done
		[ -z "$p" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -9 $pids 2>/dev/null || true
}

case "${1:-up}" in
up) up ;;
status) status ;;
down) down ;;
build) build_all ;;
*) die "usage: $0 [up|status|down|build]" ;;
esac
