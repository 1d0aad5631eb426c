package testbed

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// CtrdContainer is a plain containerd container made by RunCtrdContainer.
type CtrdContainer struct {
	Namespace string
	ID        string
	PID       int // the task's init process
}

// Ref is the container in target syntax.
func (c *CtrdContainer) Ref() string { return "containerd:" + c.Namespace + "/" + c.ID }

// RunCtrdContainer creates a container with a running task (busybox sleep)
// in containerd namespace ns of the test bed's standalone containerd, in a
// network namespace of its own (the default spec makes one). The image
// CtrdImage must be in ns (the test bed imports it into CtrdNamespace and
// k8s.io). Task, container and snapshot are removed in t.Cleanup.
func RunCtrdContainer(t testing.TB, ns, id string) *CtrdContainer {
	t.Helper()
	RequireRoot(t)
	c, err := client.New(ContainerdSock, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
	defer cancel()

	img, err := c.GetImage(ctx, CtrdImage)
	if err != nil {
		t.Fatalf("containerd image %s in namespace %s: %v", CtrdImage, ns, err)
	}
	if ok, _ := img.IsUnpacked(ctx, ""); !ok {
		if err := img.Unpack(ctx, ""); err != nil {
			t.Fatalf("unpack %s in %s: %v", CtrdImage, ns, err)
		}
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id+"-rootfs", img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/bin/sleep", "2147483647")),
	)
	if err != nil {
		t.Fatalf("create containerd container %s/%s: %v", ns, id, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
		defer cancel()
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			t.Errorf("cleanup: delete containerd container %s/%s: %v", ns, id, err)
		}
	})
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("create task %s/%s: %v", ns, id, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
		defer cancel()
		exited, err := task.Wait(ctx)
		if err == nil {
			if err := task.Kill(ctx, syscall.SIGKILL); err == nil {
				<-exited
			}
		}
		if _, err := task.Delete(ctx); err != nil {
			t.Errorf("cleanup: delete task %s/%s: %v", ns, id, err)
		}
	})
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start task %s/%s: %v", ns, id, err)
	}
	return &CtrdContainer{Namespace: ns, ID: id, PID: int(task.Pid())}
}
