package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// client is one plugin run's connection to the cluster.
type client struct {
	o       *Options
	rc      *rest.Config
	cs      kubernetes.Interface
	ns      string // the target pods' namespace (-n, else the context's)
	signals *sigCtx
	host    string // the client machine, for the helper's labels
}

func newClient(o *Options) (*client, error) {
	rc, err := o.Config.ToRESTConfig()
	if err != nil {
		return nil, nserr.Wrap(nserr.ErrUsage, err, "kubeconfig")
	}
	// The plugin's requests are few; the default 5 QPS would only slow -l.
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nserr.Wrap(nserr.ErrUsage, err, "kubeconfig")
	}
	ns, _, err := o.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, nserr.Wrap(nserr.ErrUsage, err, "kubeconfig namespace")
	}
	host, _ := os.Hostname()
	return &client{o: o, rc: rc, cs: cs, ns: ns, host: host}, nil
}

// podRef is a parsed POD[/CONTAINER] or pod/POD[/CONTAINER].
type podRef struct{ Namespace, Name, Container string }

func (p podRef) String() string { return p.Namespace + "/" + p.Name }

// nsdebugTarget is the target nsdebug on the node resolves through the CRI.
func (p podRef) nsdebugTarget() string {
	t := "pod:" + p.Namespace + "/" + p.Name
	if p.Container != "" {
		t += "/" + p.Container
	}
	return t
}

func (k *client) parsePodRef(s string) (podRef, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "pod/"), "pods/")
	name, ctr, _ := strings.Cut(s, "/")
	if name == "" || strings.Contains(ctr, "/") {
		return podRef{}, nserr.New(nserr.ErrUsage, "bad pod %q: want POD, POD/CONTAINER or pod/POD[/CONTAINER]", s)
	}
	if ctr == "" {
		ctr = k.o.Container
	}
	return podRef{Namespace: k.ns, Name: name, Container: ctr}, nil
}

// getPod fetches the target pod and checks it can be entered.
func (k *client) getPod(ctx context.Context, ref podRef) (*corev1.Pod, error) {
	pod, err := k.cs.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			if _, nsErr := k.cs.CoreV1().Namespaces().Get(ctx, ref.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(nsErr) {
				return nil, nserr.New(nserr.ErrNotFound, "namespace %q not found (looking for pod %q)", ref.Namespace, ref.Name)
			}
			return nil, nserr.New(nserr.ErrNotFound, "pod %q not found in namespace %q", ref.Name, ref.Namespace)
		}
		return nil, apiError(err, "get pod %s", ref)
	}
	if err := checkPod(pod, ref.Container); err != nil {
		return nil, err
	}
	return pod, nil
}

// checkPod: the pod runs on a node, and has the container asked for.
func checkPod(pod *corev1.Pod, ctr string) error {
	ref := pod.Namespace + "/" + pod.Name
	if ctr != "" {
		var names []string
		found := false
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
			found = found || c.Name == ctr
		}
		if !found {
			return nserr.New(nserr.ErrNotFound, "pod %s has no container %q (it has: %s)", ref, ctr, strings.Join(names, ", "))
		}
	}
	if pod.Spec.NodeName == "" {
		return nserr.New(nserr.ErrNotRunning, "pod %s is not on a node yet (phase %s)", ref, pod.Status.Phase)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nserr.New(nserr.ErrNotRunning, "pod %s is not running (phase %s on node %s)", ref, pod.Status.Phase, pod.Spec.NodeName)
	}
	if pod.Spec.HostNetwork {
		return nil // its netns is the node's: nsdebug says so itself
	}
	return nil
}

// defaultContainer is what kubectl picks: the default-container annotation,
// else the first container.
func defaultContainer(pod *corev1.Pod) string {
	if c := pod.Annotations["kubectl.kubernetes.io/default-container"]; c != "" {
		return c
	}
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name
	}
	return ""
}

// checkNode: the node exists (a helper for a missing node would wait forever
// for a kubelet that is not there).
func (k *client) checkNode(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nserr.New(nserr.ErrNotFound, "node %q not found", name)
		}
		return nil, apiError(err, "get node %s", name)
	}
	return n, nil
}

// nodeReady is the node's Ready condition, for messages.
func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return fmt.Sprintf("node %s is not Ready (%s: %s)", n.Name, c.Reason, c.Message)
		}
	}
	return fmt.Sprintf("node %s reports no Ready condition (is its kubelet running?)", n.Name)
}

// apiError maps an API error to the plugin's kinds with the server's own
// words, which name the verb, resource and namespace.
func apiError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var st apierrors.APIStatus
	switch {
	case apierrors.IsForbidden(err):
		return nserr.New(nserr.ErrPermission, "%s: %s (see 'kubectl nsdebug rbac')", what, statusMessage(err))
	case apierrors.IsUnauthorized(err):
		return nserr.New(nserr.ErrPermission, "%s: the API server does not accept these credentials: %s", what, statusMessage(err))
	case apierrors.IsNotFound(err):
		return nserr.New(nserr.ErrNotFound, "%s: %s", what, statusMessage(err))
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return nserr.New(nserr.ErrUsage, "%s: %s", what, statusMessage(err))
	case errors.As(err, &st):
		return nserr.New(nserr.ErrUnavailable, "%s: %s", what, statusMessage(err))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		return nserr.Wrap(nserr.ErrUnavailable, err, "%s: cannot reach the API server", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func statusMessage(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if m := st.Status().Message; m != "" {
			return m
		}
	}
	return err.Error()
}

// fresh is a context for clean-up: it must work after the run's context was
// cancelled by Ctrl-C.
func fresh() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}
