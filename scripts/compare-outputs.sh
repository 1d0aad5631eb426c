#!/usr/bin/env bash
set -u
[ $# = 4 ] || { echo "usage: $0 OLD NEW CONTAINER NETNS" >&2; exit 2; }
# Compares the outputs of two nsdebug binaries on the test bed (issue 13: a
# speed change must not change them): compare-outputs.sh OLD NEW CONTAINER NETNS
# (a running Docker container and a name under /var/run/netns).
# Runs each command with old, new, old again; a difference between old and new
# that old-vs-old does not also show is reported.
OLD=$1 NEW=$2 CTR=$3 NETNS=$4
PID=$(docker inspect -f '{{.State.Pid}}' $CTR)
D=$(mktemp -d)
cmds=(
 "ls -o json"
 "inspect docker:$CTR -o json"
 "inspect pid:$PID -o json"
 "inspect netns:$NETNS -o json"
 "inspect pid:1 -o json"
 "resolve docker:$CTR -o json"
 "resolve pid:$PID -o json"
 "resolve netns:$NETNS -o json"
 "resolve $CTR -o json"
 "whois $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CTR") -o json"
 "whois pid:$PID -o json"
 "graph"
 "graph -o dot"
 "ls -o wide"
 "ls"
 "resolve no-such-thing-xyz -o json"
)
# The host netns's PID list is the host's processes: they come and go.
norm() { python3 -c '
import json,sys
t=sys.stdin.read()
try: v=json.loads(t)
except Exception: sys.stdout.write(t); sys.exit()
if isinstance(v,list):
    for r in v:
        if isinstance(r,dict) and r.get("host"): r["pids"]="(host pids)"
print(json.dumps(v,indent=2))'; }
bad=0
for c in "${cmds[@]}"; do
  $OLD $c 2>$D/e1 | norm >$D/o1; r1=${PIPESTATUS[0]}
  $NEW $c 2>$D/en | norm >$D/n; rn=${PIPESTATUS[0]}
  $OLD $c 2>$D/e2 | norm >$D/o2; r2=${PIPESTATUS[0]}
  if cmp -s $D/o1 $D/n && [ $r1 = $rn ] && cmp -s $D/e1 $D/en; then echo "same: $c (rc $rn)"; continue; fi
  if cmp -s $D/o2 $D/n && [ $r2 = $rn ] && cmp -s $D/e2 $D/en; then echo "same: $c (rc $rn, as old's 2nd run)"; continue; fi
  noise=$(diff $D/o1 $D/o2 | wc -l); d=$(diff $D/o1 $D/n | wc -l)
  echo "DIFF: $c (rc old $r1/$r2 new $rn; old-vs-old $noise lines, old-vs-new $d lines)"
  diff $D/o2 $D/n | head -20; diff $D/e2 $D/en | head -5
  bad=1
done
rm -rf $D
exit $bad
