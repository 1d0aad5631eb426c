package kube

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// gc deletes helper pods a killed client left in the helper namespace: those
// past their deadline annotation or already ended, or all with --all.
func (k *client) gc(ctx context.Context, st Streams) error {
	list, err := k.cs.CoreV1().Pods(k.o.HelperNS).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue})
	if err != nil {
		return apiError(err, "list helper pods in namespace %q", k.o.HelperNS)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	now := time.Now()
	deleted, kept := 0, 0
	for i := range list.Items {
		p := &list.Items[i]
		why := gcReason(p, now, k.o.All)
		if why == "" {
			kept++
			continue
		}
		grace := int64(0)
		err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err != nil && !apierrors.IsNotFound(err) {
			return apiError(err, "delete helper pod %s/%s", p.Namespace, p.Name)
		}
		deleted++
		fmt.Fprintf(st.Out, "deleted pod/%s (node %s, %s)\n", p.Name, orDash(p.Spec.NodeName), why)
	}
	fmt.Fprintf(st.Out, "%d helper pod(s) deleted, %d still within their deadline in namespace %s\n", deleted, kept, k.o.HelperNS)
	return nil
}

// gcReason says why p may go, or "" when it may still be in use.
func gcReason(p *corev1.Pod, now time.Time, all bool) string {
	if p.Labels[LabelManagedBy] != ManagedByValue {
		return ""
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return "ended: " + string(p.Status.Phase)
	}
	d, err := time.Parse(time.RFC3339, p.Annotations[AnnotationDeadln])
	switch {
	case err != nil:
		return "no valid deadline annotation"
	case now.After(d):
		return "past its deadline " + d.UTC().Format(time.RFC3339)
	case all:
		return "--all; its deadline was " + d.UTC().Format(time.RFC3339)
	}
	return ""
}
