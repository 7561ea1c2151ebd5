#!/usr/bin/env bash
# One child of a for-each task: its input (a city) is the first argument, its index CITY_INDEX. A city with
# no line in maps.txt fails.
set -euo pipefail
grep -qx "$1" maps.txt || { echo "no map of $1" >&2; exit 1; }
echo "report $CITY_INDEX: $1"
