#!/usr/bin/env bash
# Rootless containers (issue 12): as an ordinary user with a subordinate
# range, `berth-runtime run` of busybox `true` from a bundle prepared once
# (berth-pull | berth-store prepare | berth-bundle) against rootless
# `podman run --rm --network none` of the same image, same user, one
# hyperfine run run by that user. Medians and the ratio.
# Then the whole front: `berth run --rm IMAGE true` (create: unpack-once,
# snapshot and bundle in the user's namespace; the runtime; rm) against the
# same podman line, in one more hyperfine run.
# Then a published port: `berth run --rm -p PORT:80 IMAGE true` (a pod of
# one with slirp4netns, add_hostfwd, then all of it removed) against rootless
# `podman run --rm -p PORT:80 --network slirp4netns`, with the user granted
# /dev/net/tun (setfacl) for that run only; the ACL is restored on exit.
#
# Needs root only to make the user (useradd + a range in /etc/subuid and
# /etc/subgid) and remove it again. podman runs with runc: crun 1.8 refuses
# this cgroup v1/v2 hybrid host. The --ulimit flags: podman asks for more
# open files and processes than the caller's hard limits (see bench/runtime.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-15}
if [ "$(id -u)" != 0 ]; then echo "rootless bench: run as root (it creates and removes its own user)" >&2; exit 1; fi
WORK=$(mktemp -d /tmp/berth-bench-rootless.XXXXXX)
chmod 755 "$WORK"
USER_NAME="brbench$$"
registry_pid=""
TUN_ACL=""

cleanup() {
  # The exact ACL (and so the mode) /dev/net/tun had before the grant.
  if [ -n "$TUN_ACL" ] && [ -f "$TUN_ACL" ]; then (cd / && setfacl --restore="$TUN_ACL") || echo "restore $TUN_ACL failed" >&2; fi
  if id -u "$USER_NAME" >/dev/null 2>&1; then
    uid=$(id -u "$USER_NAME")
    # podman leaves a pause process holding the user's namespace: end it by its pid file.
    for f in "/tmp/podman-run-$uid/libpod/tmp/pause.pid" "/tmp/storage-run-$uid/libpod/tmp/pause.pid"; do
      [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "/tmp/berth-run-$uid" "/tmp/podman-run-$uid" "/tmp/storage-run-$uid" "/tmp/containers-user-$uid"
    userdel -r "$USER_NAME" >/dev/null 2>&1 || true
    sed -i "/^$USER_NAME:/d" /etc/subuid /etc/subgid
  fi
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The image: busybox-static in a local registry, as test/demo.sh builds it.
. "$REPO/test/lib/registry.sh"
start_registry "$WORK"
push_busybox "$WORK"
IMAGE=$busybox_image

# The user, with a range of its own, as the guide's rootless article sets it up.
useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$USER_NAME"
usermod --add-subuids 700000-765535 --add-subgids 700000-765535 "$USER_NAME"
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
as_user() { runuser -u "$USER_NAME" -- env -i PATH="$PATH" HOME="$HOME_DIR" LANG=C.UTF-8 "$@"; }
# One hyperfine run by the user: berth's command against podman's, medians and the ratio.
compare_as_user() { # json name, berth label, berth command, podman label, podman command
  local json="$WORK/$1.json" b p
  as_user sh -c "cd ~ && hyperfine --runs '$RUNS' --warmup 2 --export-json '$json' -n '$2' '$3 2>/dev/null' -n '$4' '$5'" >/dev/null
  b=$(jq -r '.results[0].median * 1000 | floor' "$json")
  p=$(jq -r '.results[1].median * 1000 | floor' "$json")
  printf '%-48s median %5d ms\n' "$2" "$b"
  printf '%-48s median %5d ms\n' "$4" "$p"
  printf 'ratio berth/podman: %s\n' "$(echo "scale=2; $b / $p" | bc)"
}

# Prepared once: the bundle for berth, the image in podman's store.
as_user node "$REPO/tools/puller/bin/berth-pull.js" --tls-verify=false "$IMAGE" >/dev/null 2>&1
as_user sh -c "cd ~ && node '$REPO/tools/layer-store/bin/berth-store.js' prepare bench --image '$IMAGE' \
  | node '$REPO/tools/bundle-generator/bin/berth-bundle.js' --name bench --network none - -- true" >"$WORK/bundle.json" 2>/dev/null
BUNDLE=$(jq -r .bundle "$WORK/bundle.json")
as_user podman pull --quiet --tls-verify=false "$IMAGE" >/dev/null 2>&1

BERTH="$REPO/tools/runtime/bin/berth-runtime.js run --bundle $BUNDLE bench"
PODMAN="podman --runtime runc run --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 $IMAGE true"
as_user sh -c "$BERTH" 2>/dev/null || { echo "berth-runtime run failed as $USER_NAME:" >&2; as_user sh -c "$BERTH" >&2; exit 1; }
as_user sh -c "$PODMAN" || { echo "rootless podman failed as $USER_NAME" >&2; exit 1; }

chmod 777 "$WORK"
compare_as_user rootless 'berth-runtime run true (rootless)' "$BERTH" 'podman run --rm --network none true (rootless)' "$PODMAN"

# The front: create (storage steps in the user's namespace) + berth-runtime run + rm, per run.
FRONT="$REPO/tools/berth/bin/berth.js run --rm $IMAGE true"
as_user sh -c "cd ~ && $FRONT" 2>/dev/null || { echo "berth run failed as $USER_NAME:" >&2; as_user sh -c "cd ~ && $FRONT" >&2; exit 1; }
compare_as_user front 'berth run --rm true (rootless)' "$FRONT" 'podman run --rm --network none true (rootless)' "$PODMAN"

# A published port through slirp4netns, for berth and podman alike. The
# user needs /dev/net/tun (0600 root here): granted for this run only.
if ! command -v setfacl >/dev/null; then echo "rootless bench: setfacl missing (Debian package acl): skipping the -p run" >&2; exit 0; fi
TUN_ACL="$WORK/tun.acl"
getfacl --absolute-names /dev/net/tun >"$TUN_ACL"
setfacl -m "u:$USER_NAME:rw" /dev/net/tun
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
FRONT_P="$REPO/tools/berth/bin/berth.js run --rm -p $PORT:80 $IMAGE true"
PODMAN_P="podman --runtime runc run --rm -p $PORT:80 --network slirp4netns --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 $IMAGE true"
as_user sh -c "cd ~ && $FRONT_P" 2>/dev/null || { echo "berth run -p failed as $USER_NAME:" >&2; as_user sh -c "cd ~ && $FRONT_P" >&2; exit 1; }
as_user sh -c "cd ~ && $PODMAN_P" || { echo "rootless podman -p with slirp4netns failed as $USER_NAME" >&2; exit 1; }
compare_as_user publish "berth run --rm -p $PORT:80 true (rootless)" "$FRONT_P" "podman run --rm -p $PORT:80 slirp4netns (rootless)" "$PODMAN_P"
