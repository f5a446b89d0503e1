#!/usr/bin/env bash
# berth-runtime against runc (and crun when it runs on this host): `run` of
# busybox `true` from a prepared bundle, create+start+delete as three calls,
# and the resident memory of a created-but-not-started container's init.
# Medians and ratios come from one hyperfine run per comparison. Then where the
# time goes: a bare node boot against runc's whole `run`, in one hyperfine run,
# with and without NODE_EXTRA_CA_CERTS (this host sets it; it costs every Node
# start a CA file parse).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ -f "$REPO/tools/runtime/dist/cli.js" ] || (cd "$REPO/tools/runtime" && npm run build >/dev/null)
CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
RUNS=${RUNS:-15}
WORK=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  for id in $($BERTH list -q 2>/dev/null); do $BERTH delete -f "$id" >/dev/null 2>&1; done
  for id in $($RUNC list -q 2>/dev/null); do $RUNC delete -f "$id" >/dev/null 2>&1; done
  for id in $($CRUN list -q 2>/dev/null); do $CRUN delete -f "$id" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# As engines and users run it: the launcher by path (a sh line that starts
# node on the CommonJS bundle without NODE_EXTRA_CA_CERTS).
BIN=$REPO/tools/runtime/bin/berth-runtime.js
BERTH="$BIN --root $WORK/state-berth"
RUNC="runc --root $WORK/state-runc"
CRUN="crun --root $WORK/state-crun"

# The bundle: busybox-static as the whole rootfs, `runc spec` with `true`.
mkdir -p "$WORK/bundle/rootfs/bin" "$WORK/bundle/rootfs/proc" "$WORK/bundle/rootfs/sys" "$WORK/bundle/rootfs/dev"
cp /bin/busybox "$WORK/bundle/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$WORK/bundle/rootfs/bin/$a"; done
(cd "$WORK/bundle" && runc spec)
jq '.process.terminal=false | .process.args=["true"]' "$WORK/bundle/config.json" > "$WORK/bundle/c.json"
mv "$WORK/bundle/c.json" "$WORK/bundle/config.json"
mkdir -p "$WORK/sleeper"
jq --arg r "$WORK/bundle/rootfs" '.process.args=["sleep","60"] | .root.path=$r' "$WORK/bundle/config.json" > "$WORK/sleeper/config.json"

names=(berth-runtime runc)
cmds=("$BERTH" "$RUNC")
if $CRUN run -b "$WORK/bundle" crun-probe >/dev/null 2>"$WORK/crun.err"; then
  names+=(crun); cmds+=("$CRUN")
else
  echo "crun: left out, it fails on this host: $(tail -1 "$WORK/crun.err")"
fi

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }

compare() { # title, then one command per runtime
  local title=$1; shift
  local json="$WORK/$title.json" args=()
  for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "$1"); shift; done
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "${args[@]}" >/dev/null 2>&1 \
    || hyperfine --runs "$RUNS" --warmup 2 --export-json "$json" "${args[@]}" >/dev/null
  local base; base=$(median 1 "$json")
  for i in "${!names[@]}"; do
    local m; m=$(median "$i" "$json")
    printf '%-28s %-14s median %5d ms   ratio to runc %s\n' "$title" "${names[$i]}" "$m" "$(echo "scale=2; $m / $base" | bc)"
  done
}

run_cmds=(); csd_cmds=()
for i in "${!names[@]}"; do
  c=${cmds[$i]}
  run_cmds+=("$c run -b $WORK/bundle b$i")
  csd_cmds+=("sh -c '$c create -b $WORK/bundle c$i && $c start c$i && $c delete -f c$i'")
done
compare "run true" "${run_cmds[@]}"
compare "create+start+delete" "${csd_cmds[@]}"

# Where berth's time goes, in one hyperfine run: runc's whole `run` against a
# bare node boot (the floor of any Node CLI), the CLI alone, and `run` through
# `node bin/...` with the caller's NODE_EXTRA_CA_CERTS (how the tests call it:
# the sh line is skipped, so the CA file is parsed and the ES module loader runs).
hyperfine -N -i --runs "$RUNS" --warmup 2 --export-json "$WORK/parts.json" \
  -n 'runc run (the whole container)' "$RUNC run -b $WORK/bundle p0" \
  -n 'node -e 0 (NODE_EXTRA_CA_CERTS unset)' "env -u NODE_EXTRA_CA_CERTS node -e 0" \
  -n 'node -e 0 (NODE_EXTRA_CA_CERTS set)' "env NODE_EXTRA_CA_CERTS=$CA node -e 0" \
  -n 'berth-runtime CLI alone (state of nothing)' "$BERTH state none" \
  -n 'node + koffi + libc (loaded by every stage)' "env -u NODE_EXTRA_CA_CERTS node -e \"require('$REPO/node_modules/koffi').load('libc.so.6')\"" \
  -n 'berth-runtime run, via node bin/ with CA set' "env NODE_EXTRA_CA_CERTS=$CA node $BERTH run -b $WORK/bundle p1" >/dev/null 2>&1 || true
base=$(median 0 "$WORK/parts.json")
for i in 0 1 2 3 4 5; do
  m=$(median "$i" "$WORK/parts.json")
  printf '%-50s median %5d ms   ratio to runc run %s\n' "$(jq -r ".results[$i].command" "$WORK/parts.json")" "$m" "$(echo "scale=2; $m / $base" | bc)"
done
echo "one create, step by step (berth-runtime --debug):"
# (to a file: the created container keeps its stderr open while it waits)
$BERTH --debug create -b "$WORK/sleeper" steps >/dev/null 2>"$WORK/steps.log"
grep -E '^debug: t\+' "$WORK/steps.log" | sed 's/^debug: /  /'
$BERTH delete -f steps >/dev/null

# Resident memory of a created (waiting) init.
for i in "${!names[@]}"; do
  c=${cmds[$i]}
  $c create -b "$WORK/sleeper" mem$i >/dev/null 2>&1
  pid=$($c state mem$i | jq .pid)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
  threads=$(awk '/Threads/ {print $2}' /proc/$pid/status)
  # PSS splits shared pages (node's binary, mapped by every node process) among their users.
  pss=$(awk '/^Pss:/ {print $2}' /proc/$pid/smaps_rollup)
  printf '%-28s %-14s VmRSS %6d kB (RssAnon %6d kB)  Pss %6d kB  threads %d\n' "created, waiting init" "${names[$i]}" "$rss" "$anon" "$pss" "$threads"

  $c delete -f mem$i >/dev/null
done
