#!/usr/bin/env bash
# The guide's pod walkthrough ("Containers and Pods 101", section 3) with
# berth, end to end on a fresh machine after `make deps build` (root): a
# loopback registry with two images built here from busybox, then exactly the
# commands the guide types, with berth for podman. Everything lives in one
# temp dir (its own --root and --runroot) and is removed on exit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d /tmp/berth-wp-pod.XXXXXX)
registry_pid=""
B="node $repo/tools/berth/bin/berth.js --root $work/root --runroot $work/run"
say() { printf '==> %s\n' "$*" >&2; }
cleanup() {
  $B rm -f -a >/dev/null 2>&1 || true
  $B pod rm -f wp_pod >/dev/null 2>&1 || true
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  grep -o "$work[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "wp-pod: needs root (pods, overlayfs, namespaces)" >&2; exit 1; }
[ -f "$repo/tools/berth/dist/cli.js" ] || { echo "wp-pod: berth is not built: run 'make build' first" >&2; exit 1; }

. "$repo/test/lib/registry.sh"
start_registry "$work"
(cd "$repo" && npx esbuild tools/berth/demo/guide-images.ts --bundle --platform=node --format=esm --outfile="$work/guide-images.mjs" \
  --external:koffi --log-level=warning --banner:js="import{createRequire as __r}from'node:module';const require=__r(import.meta.url);")
refs=$(node "$work/guide-images.mjs" "$work/layout" "127.0.0.1:$port")
db=$(node -p 'JSON.parse(process.argv[1]).db' "$refs")
web=$(node -p 'JSON.parse(process.argv[1]).web' "$refs")
hostport=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
say "images: $db (nc answering with its env), $web (httpd + CGI asking the db)"

$B pull --tls-verify=false "$db" >/dev/null
$B pull --tls-verify=false "$web" >/dev/null
say "berth pod create --name wp_pod --publish $hostport:80"
$B pod create --name wp_pod --publish "$hostport:80"
$B pod list
say "berth run --detach --pod wp_pod --restart=always -e DB_USER=tux --name=wp_db DB"
$B run --detach --pod wp_pod --restart=always -e DB_USER=tux --name=wp_db "$db"
say "berth run --detach --restart=always --pod=wp_pod -e DB_HOST=127.0.0.1 --name mypress WEB"
$B run --detach --restart=always --pod=wp_pod -e DB_HOST=127.0.0.1 --name mypress "$web"
$B ps
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$hostport/cgi-bin/index.cgi" >"$work/page" 2>/dev/null && break; sleep 0.2; done
say "curl localhost:$hostport: $(cat "$work/page")"
grep -q 'db answers: user=tux' "$work/page"
say "berth exec mypress cat /etc/os-release"
$B exec mypress cat /etc/os-release
say "berth stop mypress wp_db; berth rm mypress wp_db"
$B stop -t 2 mypress wp_db
$B rm mypress wp_db
set +e
$B rm nosuch
code=$?
set -e
say "berth rm nosuch exited $code (the guide's Makefile relies on 125)"
[ "$code" = 125 ]
$B pod rm wp_pod >/dev/null
say "wp_pod walkthrough done"
