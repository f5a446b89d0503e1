#!/bin/sh
# Smoke test of the website image, the guide's test script in sh: run the
# image, fetch the page, check it carries the git hash it was built from,
# and always remove the container.
#   usage: test.sh IMAGE HASH
# BERTH (the engine command, default berth) and TEST_PORT (default 18080)
# come from the environment. The container shares the host's network, so the
# page is fetched on 127.0.0.1:TEST_PORT without port forwarding.
set -u
image=${1:?usage: test.sh IMAGE HASH}
hash=${2:?usage: test.sh IMAGE HASH}
berth=${BERTH:-berth}
port=${TEST_PORT:-18080}
name=smk

# A container left by an earlier run would hold the name: remove it (125 = none).
$berth rm -f "$name" >/dev/null 2>&1

cleanup() { $berth rm -f "$name" >/dev/null 2>&1; }
trap cleanup EXIT

$berth run -d --name "$name" --network host -e PORT="$port" "$image" >/dev/null || {
  echo "test: could not start $image" >&2
  exit 1
}

# Wait for httpd (at most 10 s), fetching with busybox wget (bounded by
# timeout(1): Debian's busybox 1.35 wget crashes with its own -T).
page=""
i=0
while [ $i -lt 50 ]; do
  page=$(timeout 3 busybox wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null) && break
  i=$((i + 1))
  sleep 0.2
done

if [ -z "$page" ]; then
  echo "test: no answer from $image on 127.0.0.1:$port" >&2
  $berth logs "$name" >&2 2>/dev/null
  exit 1
fi
case "$page" in
  *"<span id=\"git-hash\">$hash</span>"*) echo "test: ok, $image serves revision $hash" ;;
  *) echo "test: the page from $image does not carry revision $hash:" >&2; echo "$page" >&2; exit 1 ;;
esac
