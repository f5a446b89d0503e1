#!/bin/sh
':' //; p=$0; [ -L "$p" ] && p=$(readlink -f "$p"); case $p in */*) ;; *) p=./$p ;; esac; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || export BERTH_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; exec node "${p%/*}/../dist/cli.js" "$@"
// berth's launcher: sh runs the line above, Node the line below (libs/cli-kit/README.md, "Launchers").
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/cli.js');
