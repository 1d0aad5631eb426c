package kube

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nsdebug/nsdebug/internal/version"
)

// Labels and annotations on every helper pod. ManagedBy is what gc and the
// tests list by.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	ManagedByValue    = "nsdebug"
	LabelName         = "app.kubernetes.io/name"
	LabelClient       = "nsdebug.io/client"
	LabelTargetNode   = "nsdebug.io/node"
	LabelTargetPod    = "nsdebug.io/target-pod"
	LabelTargetNS     = "nsdebug.io/target-namespace"
	AnnotationDeadln  = "nsdebug.io/deadline"
	AnnotationCommand = "nsdebug.io/command"
	AnnotationUser    = "nsdebug.io/client-host"
	helperContainer   = "nsdebug"
)

// HelperSpec is what a helper pod is made from.
type HelperSpec struct {
	Name       string
	Namespace  string
	Node       string
	Image      string
	PullPolicy corev1.PullPolicy
	// Lifetime bounds the whole session: the idle command exits after it,
	// and activeDeadlineSeconds (Lifetime + DeadlineSlack) ends the pod
	// server-side even if the client and the idle command are both gone.
	Lifetime time.Duration
	Slack    time.Duration // DeadlineSlack if 0
	// Privileged: only for sysctl writes (see HelperPod).
	Privileged bool
	// Client names who runs the plugin (a label value).
	Client string
	// TargetNS/TargetPod name the target pod, if any (labels).
	TargetNS, TargetPod string
	Command             string // the nsdebug subcommand (annotation)
	Now                 time.Time
}

// DeadlineSlack is how far past the session's Lifetime the API server's
// activeDeadlineSeconds ends the helper pod.
const DeadlineSlack = 2 * time.Minute

// HelperName is a fresh helper pod name for node: the name is chosen here,
// not by generateName, so that a Ctrl-C that arrives while the create call is
// in flight still knows what to delete.
func HelperName(node string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	base := "nsdebug-" + labelSafe(node)
	if max := validation.DNS1123SubdomainMaxLength - 1 - len(suffix); len(base) > max {
		base = base[:max]
	}
	return strings.TrimRight(base, "-.") + "-" + suffix
}

// Deadline is the time after which gc may delete the helper.
func (s HelperSpec) Deadline() time.Time { return s.Now.Add(s.Lifetime + s.slack()) }

func (s HelperSpec) slack() time.Duration {
	if s.Slack > 0 {
		return s.Slack
	}
	return DeadlineSlack
}

// HelperPod builds the helper pod. What nsdebug on the node needs, from its
// code:
//   - hostPID: nsdebug reads /proc/PID/ns/net of the pods' processes and
//     refuses (exit 11) when /proc is not the host PID namespace's
//     (internal/hostcheck). With hostPID the container's /proc is that.
//   - one volume, an emptyDir in memory at /tmp: exec stages the copies of
//     the target's resolv.conf and hosts it bind-mounts in a directory there
//     (enter's copyStages), and a scratch image has none.
//   - no hostPath: the node's CRI socket, its /run/netns files and the
//     sandboxes' resolv.conf are reached through the kubelet's root in
//     procfs (/proc/KUBELET/root/..., nsdebug --cri-endpoint kubelet), so no
//     hostPath is mounted and nothing has to be known about the node in
//     advance (its socket path differs between distributions).
//   - CAP_SYS_ADMIN: setns(2) into a network namespace and the private mount
//     namespace exec sets up (/sys remount, resolv.conf/hosts binds);
//     CAP_SYS_PTRACE: /proc/PID/ns/* and /proc/PID/root of other users'
//     processes (ptrace access mode); CAP_NET_ADMIN: netlink changes and
//     sysctl writes in the target netns; CAP_NET_RAW: ping/tcpdump run as
//     the command (some runtimes drop it by default). The runtime's default
//     set stays (root's DAC_OVERRIDE reads the CRI socket's directory;
//     SETUID/SETGID serve exec -u; SYS_CHROOT: setns into
//     the node's mount namespace for --host-tools, which the kernel allows
//     only with it).
//   - privileged only for sysctl writes: the container runtime mounts
//     /proc/sys read-only in every unprivileged container, and a write
//     through it fails with EROFS whatever the capabilities.
func HelperPod(s HelperSpec) *corev1.Pod {
	tmpSize := resource.MustParse("16Mi")
	deadline := int64((s.Lifetime + s.slack() + time.Second - 1) / time.Second)
	grace := int64(0)
	no := false
	yes := true
	caps := []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "NET_RAW"}
	sc := &corev1.SecurityContext{
		Capabilities: &corev1.Capabilities{Add: caps},
		RunAsUser:    new(int64),
		RunAsNonRoot: &no,
	}
	if s.Privileged {
		sc.Privileged = &yes
	}
	labels := map[string]string{
		LabelManagedBy:  ManagedByValue,
		LabelName:       "nsdebug-helper",
		LabelTargetNode: labelSafe(s.Node),
	}
	if s.Client != "" {
		labels[LabelClient] = labelSafe(s.Client)
	}
	if s.TargetPod != "" {
		labels[LabelTargetPod] = labelSafe(s.TargetPod)
		labels[LabelTargetNS] = labelSafe(s.TargetNS)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      s.Name,
			Namespace: s.Namespace,
			Labels:    labels,
			Annotations: map[string]string{
				AnnotationDeadln:  s.Deadline().UTC().Format(time.RFC3339),
				AnnotationCommand: s.Command,
			},
		},
		Spec: corev1.PodSpec{
			NodeName:                      s.Node,
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         &deadline,
			TerminationGracePeriodSeconds: &grace,
			HostPID:                       true,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			// Every taint: the helper must run on the target's node whatever
			// keeps other workloads off it (it is gone within minutes).
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Volumes:     []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &tmpSize}}}},
			Containers: []corev1.Container{{
				Name:            helperContainer,
				Image:           s.Image,
				ImagePullPolicy: s.PullPolicy,
				Command: []string{"nsdebug", "node-helper",
					fmt.Sprintf("--protocol=%d", version.Protocol),
					"--until=" + s.Now.Add(s.Lifetime+s.slack()/2).UTC().Format(time.RFC3339)},
				SecurityContext:          sc,
				VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				Resources: corev1.ResourceRequirements{
					// Small and Burstable: eviction under pressure takes
					// BestEffort pods first.
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("32Mi"),
					},
				},
			}},
		},
	}
}

// labelSafe makes s a valid label value (63 characters of [A-Za-z0-9._-],
// alphanumeric at both ends).
func labelSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	out := string(b)
	if len(out) > validation.LabelValueMaxLength {
		out = out[:validation.LabelValueMaxLength]
	}
	return strings.Trim(out, "._-")
}
