#!/usr/bin/env bash
# Stop and remove a container; a missing one is not an error. podman and
# berth exit 125 for "no such container", which would stop make.
#   usage: clean-container.sh BERTH NAME
berth=${1:?usage: clean-container.sh BERTH NAME}
name=${2:?usage: clean-container.sh BERTH NAME}
$berth stop "$name" >/dev/null 2>&1
status=$?
if [ $status -eq 125 ]; then
  exit 0   # no such container
elif [ $status -ne 0 ]; then
  exit $status
fi
$berth rm "$name" >/dev/null 2>&1
status=$?
[ $status -eq 125 ] && exit 0
exit $status
