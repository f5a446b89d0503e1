#!/bin/sh
':' //; p=$0; [ -L "$p" ] && p=$(readlink -f "$p"); case $p in */*) ;; *) p=./$p ;; esac; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || export BERTH_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; exec node "${p%/*}/../dist/cli.js" "$@"
/*
 * berth-runtime's launcher, read by sh when run by path (podman, conmon,
 * containerd's shim, node_modules/.bin) and by node when run as
 * `node bin/berth-runtime.js`. The line above is a shell command to sh and a
 * string plus a comment to JavaScript. Through sh, Node starts on the
 * CommonJS bundle directly (no ES module loader) and without
 * NODE_EXTRA_CA_CERTS, which makes every Node start read and parse a CA file
 * (~40 ms here) although the runtime never speaks TLS. A symlink to this
 * file is resolved first so dist/ is found beside the real bin/.
 */
import { createRequire } from 'node:module';

// require, not import: an import of the CommonJS bundle from this ES module
// took about twice the CPU of the whole old ESM start (measured for `state`).
createRequire(import.meta.url)('../dist/cli.js');
