# Shell helper, sourced by test/demo.sh and bench/*.sh: start Debian's
# docker-registry (the CNCF distribution registry) on a free loopback port,
# storing into DIR/registry. Sets $port and $registry_pid; the caller's trap
# stops it. Nothing listens beyond 127.0.0.1.
start_registry() {
  local dir=$1
  port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return 0
    if ! kill -0 "$registry_pid" 2>/dev/null; then cat "$dir/registry.log" >&2; return 1; fi
    sleep 0.1
  done
  echo "docker-registry did not answer on 127.0.0.1:$port" >&2
  return 1
}

# The busybox test image, built from Debian's busybox-static by
# test/demo/seed.ts into DIR/layout, then pushed with skopeo (the peer tool, so
# the registry holds what any client would push) to the registry
# start_registry started. Sets $busybox_image to its reference.
push_busybox() {
  local dir=$1 repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  (cd "$repo" && npx esbuild test/demo/seed.ts --bundle --platform=node --format=esm \
    --outfile="$dir/seed.mjs" --external:koffi --log-level=warning \
    --banner:js="import{createRequire as __r}from'node:module';const require=__r(import.meta.url);")
  node "$dir/seed.mjs" "$dir/layout" >/dev/null
  busybox_image="127.0.0.1:$port/library/busybox:latest"
  skopeo copy --quiet --dest-tls-verify=false "oci:$dir/layout:busybox:latest" "docker://$busybox_image"
}
