#!/usr/bin/env bash
# Loads a table into the warehouse (here: waits as long as its argument says), one slot of the pool each.
echo "loading for ${1:-1} s"
sleep "${1:-1}"
echo "loaded"
