#!/usr/bin/env bash
# The main job, end to end, on a fresh machine after `make deps build`
# (`make demo` runs this). First the stages by hand: build a busybox image
# locally, serve it from a loopback registry, pull it with berth-pull, unpack
# it onto an overlayfs snapshot with berth-store, turn it into an OCI bundle
# with berth-bundle and run it with berth-runtime. Then the same parts composed
# by `berth`, the podman-style front: the guide's pod walkthrough (wp_pod, a
# db and a web container talking over 127.0.0.1, a published port), in
# tools/berth/demo/wp-pod.sh. Steps 4-7 need root (overlayfs, namespaces).
#
# Everything lives in one temp dir and one registry process, both removed on
# exit (the trap), whether the demo succeeds or not.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
registry_pid=""

if [ -t 2 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '%s==> %s%s\n' "$bold" "$*" "$plain" >&2; }

cleanup() {
  if [ -n "$registry_pid" ] && kill -0 "$registry_pid" 2>/dev/null; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  if [ -n "${bundle:-}" ]; then
    node "$repo/tools/runtime/bin/berth-runtime.js" --root "$work/run" delete --force demo >/dev/null 2>&1 || true
    umount -R "$bundle/rootfs" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Step 0: what the demo needs.
step_check() {
  local missing=()
  for tool in node docker-registry skopeo curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ -x /bin/busybox ] || missing+=(busybox-static)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "demo: missing ${missing[*]}: run 'make deps' first" >&2
    exit 1
  fi
  if [ ! -f "$repo/tools/puller/dist/cli.js" ]; then
    echo "demo: berth-pull is not built: run 'make build' first" >&2
    exit 1
  fi
}

# Step 1: a registry on a free loopback port, storing into the temp dir.
step_registry() {
  # shellcheck source=lib/registry.sh
  . "$repo/test/lib/registry.sh"
  start_registry "$work"
  say "registry: docker-registry (CNCF distribution) on 127.0.0.1:$port, storage in $work/registry"
}

# Step 2: the busybox test image, built here from Debian's busybox-static,
# then pushed with skopeo (the peer tool, so the registry holds what any
# client would push).
step_image() {
  push_busybox "$work"
  image=$busybox_image
  say "image: busybox built from /bin/busybox and pushed as $image"
}

# Step 3: berth-pull into a fresh root.
step_pull() {
  root="$work/root"
  say "pull: berth-pull --tls-verify=false --root $root $image"
  node "$repo/tools/puller/bin/berth-pull.js" --tls-verify=false --root "$root" "$image" >"$work/image.json"
  cat "$work/image.json"
  local digest layers
  # node rather than jq: the demo needs nothing `make deps` does not install.
  digest=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).manifest.digest' "$work/image.json")
  layers=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).layers.length' "$work/image.json")
  say "pulled: manifest $digest with $layers layer(s) into $root/images (an OCI image layout)"
  skopeo inspect "oci:$root/images:$image" >/dev/null
  say "check: skopeo reads the same store: skopeo inspect oci:$root/images:$image"
}

# Step 4: the image's layers unpacked once (keyed by chainID) and an active
# overlayfs snapshot on top of them; berth-store prints the mounts as data.
step_prepare() {
  say "prepare: berth-store prepare demo --image - < image.json"
  node "$repo/tools/layer-store/bin/berth-store.js" --root "$root" prepare demo --image - <"$work/image.json" >"$work/rootfs.json"
  say "rootfs: $(node -p 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); d.mounts.map(m=>m.type+" "+m.options.filter(o=>!o.startsWith("lowerdir")).join(",")).join("; ")' "$work/rootfs.json")"
}

# Step 5: image config + options -> config.json, the rootfs mounted at bundle/rootfs.
step_bundle() {
  say "bundle: berth-bundle --name demo rootfs.json -- sh -c '…'"
  node "$repo/tools/bundle-generator/bin/berth-bundle.js" --root "$root" --name demo --hostname demo "$work/rootfs.json" \
    -- /bin/sh -c 'echo "hello from a berth container: hostname $(hostname), pid $$, $(grep PRETTY_NAME /etc/os-release)"' >"$work/bundle.json"
  bundle=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).bundle' "$work/bundle.json")
  say "bundle: $bundle (config.json + rootfs, runs unchanged under runc)"
}

# Step 6: the OCI runtime: namespaces, pivot_root, capabilities, seccomp, cgroups.
step_run() {
  say "run: berth-runtime run --bundle $bundle demo"
  node "$repo/tools/runtime/bin/berth-runtime.js" --root "$work/run" run --bundle "$bundle" demo
  node "$repo/tools/runtime/bin/berth-runtime.js" --root "$work/run" delete --force demo >/dev/null 2>&1 || true
  umount -R "$bundle/rootfs"
  node "$repo/tools/layer-store/bin/berth-store.js" --root "$root" remove demo >/dev/null
  bundle=""
  say "cleaned up: container deleted, snapshot removed"
}

step_check
step_registry
step_image
step_pull
if [ "$(id -u)" = 0 ]; then
  step_prepare
  step_bundle
  step_run
  say "engine: the guide's pod walkthrough with berth (tools/berth/demo/wp-pod.sh)"
  bash "$repo/tools/berth/demo/wp-pod.sh"
else
  say "not root: stopping after the pull (unpack and run need root)"
fi
say "demo done"
