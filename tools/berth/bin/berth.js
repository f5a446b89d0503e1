#!/bin/sh
':' //; p=$0; [ -L "$p" ] && p=$(readlink -f "$p"); case $p in */*) ;; *) p=./$p ;; esac; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || export BERTH_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; exec node "${p%/*}/../dist/cli.js" "$@"
// berth's launcher: sh runs the line above, Node the line below (libs/cli-kit/README.md, "Launchers").
// The front stays an ES module bundle split into chunks: a verb loads only its own code.
import '../dist/cli.js';
