package kube

import (
	"fmt"
	"io"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// RBACName names the roles and bindings `kubectl nsdebug rbac` prints.
const RBACName = "nsdebug-user"

// RBACObjects are the least-privilege rules a user needs:
//   - cluster-wide: get and list pods (the target, -l) and get nodes (the
//     target's node must exist; ls --node);
//   - in the helper namespace only: create, get, watch, list and delete pods
//     (the helper's life; list for gc) and create pods/exec (running nsdebug
//     in it). pods/exec is NOT granted anywhere else: the user cannot exec
//     into the target pods themselves.
//
// Creating a hostPID pod with SYS_ADMIN in the helper namespace is root on
// every node: grant this as you would node access.
func RBACObjects(name, helperNS string, subject rbacv1.Subject) []any {
	meta := func(kind, ns string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	cr := &rbacv1.ClusterRole{
		TypeMeta:   meta("ClusterRole", ""),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
		},
	}
	crb := &rbacv1.ClusterRoleBinding{
		TypeMeta:   meta("ClusterRoleBinding", ""),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	role := &rbacv1.Role{
		TypeMeta:   meta("Role", helperNS),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: helperNS, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "watch", "list", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		},
	}
	rb := &rbacv1.RoleBinding{
		TypeMeta:   meta("RoleBinding", helperNS),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: helperNS, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	return []any{cr, crb, role, rb}
}

func rbacSubject(o *Options) (rbacv1.Subject, error) {
	n := 0
	for _, s := range []string{o.User, o.Group, o.ServiceAccount} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return rbacv1.Subject{}, nserr.New(nserr.ErrUsage, "rbac: give one of --for-user, --for-group, --for-serviceaccount")
	}
	switch {
	case o.Group != "":
		return rbacv1.Subject{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: o.Group}, nil
	case o.ServiceAccount != "":
		ns, name, ok := strings.Cut(o.ServiceAccount, ":")
		if !ok || ns == "" || name == "" {
			return rbacv1.Subject{}, nserr.New(nserr.ErrUsage, "rbac: --for-serviceaccount wants NAMESPACE:NAME (got %q)", o.ServiceAccount)
		}
		return rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: name}, nil
	}
	user := o.User
	if user == "" {
		user = "USER"
	}
	return rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}, nil
}

// printRBAC writes the objects as one YAML stream for kubectl apply -f -.
func printRBAC(w io.Writer, o *Options) error {
	subj, err := rbacSubject(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# Least privilege for kubectl nsdebug (helper namespace %s).\n# Creating its helper pods (hostPID, CAP_SYS_ADMIN) is root on the nodes: grant it as node access.\n", o.HelperNS)
	for i, obj := range RBACObjects(o.RBACName, o.HelperNS, subj) {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		_, _ = w.Write(b)
	}
	return nil
}
