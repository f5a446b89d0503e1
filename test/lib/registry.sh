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
