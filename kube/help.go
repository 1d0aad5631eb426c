package kube

import (
	"fmt"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

const usageText = `kubectl nsdebug runs nsdebug on a pod's node through the Kubernetes API: one
short-lived helper pod on that node (hostPID, deleted on every way out), no
agent, no SSH.

Usage:
  kubectl nsdebug [flags] POD[/CONTAINER] -- CMD [ARGS...]     run CMD in the pod's netns
  kubectl nsdebug shell [flags] POD                            a shell in the pod's netns
  kubectl nsdebug resolve|inspect|sysctl|diagnose|capture [flags] POD [nsdebug flags and args]
  kubectl nsdebug whois [flags] THING POD|node/NAME            (or --node NAME)
  kubectl nsdebug ls|graph [flags] node/NAME|POD               (or --node NAME)
  kubectl nsdebug [flags] -l SELECTOR -- CMD [ARGS...]         every matching pod
  kubectl nsdebug gc [--all]                                   delete helper pods left behind
  kubectl nsdebug rbac [--for-user U|--for-group G|--for-serviceaccount NS:NAME]
  kubectl nsdebug help [exit-codes] | version

The plugin's flags (below, and kubectl's: --kubeconfig, --context, -n, --as,
--request-timeout, ...) go before the target; what follows the target is
nsdebug's own and is passed through unchanged. The pod's namespace is -n, else
the context's.

Flags:
%s`

const exitCodesText = `Exit statuses of kubectl nsdebug:

exec and shell: the remote command's own status (nsdebug exec's: 125 when
nsdebug on the node fails, 126 not executable, 127 not found); every failure
of the plugin itself is 125, with one line on stderr saying which.

Other commands: the remote nsdebug's status (see 'nsdebug help exit-codes'),
or the plugin's own:
  0   success
  1   other failure
  2   invalid input (flags, target, kubeconfig)
  3   not found: the pod, its container, the namespace, the node, the helper
      namespace
  5   not running: the pod is not Running on a node
  7   forbidden: RBAC refused a verb (the message names it), or the
      credentials were refused
  8   unavailable: the API server cannot be reached, or the exec connection
      was lost (the line says whether the helper pod was deleted; if not,
      gc or its activeDeadlineSeconds removes it)
  12  helper pod failed: its image cannot be pulled, the node never started
      it within --start-timeout, it was evicted, deleted or ended
  13  helper pod rejected by admission (Pod Security: the message names the
      namespace label to change and --helper-namespace)
  14  protocol mismatch: the helper image's nsdebug is of another version
  128+N  interrupted by signal N (the helper pod is deleted first)

With -l: the highest status of all pods.`

func help(st Streams, args []string) error {
	if len(args) > 0 {
		if args[0] == "exit-codes" {
			fmt.Fprintln(st.Out, exitCodesText)
			return nil
		}
		return nserr.New(nserr.ErrUsage, "no help topic %q (topics: exit-codes)", args[0])
	}
	o := &Options{}
	fs := newFlags(o)
	fmt.Fprintf(st.Out, usageText, fs.FlagUsages())
	return nil
}
