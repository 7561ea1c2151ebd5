#!/usr/bin/env bash
# Fails the way its first argument says: "busy" exits 75 (try again later), "bad-input" exits 4 (no retry
# helps), "oom" prints an out-of-memory error and exits 1.
echo "exporting ($1)..."
case "$1" in
  busy) echo "target busy, try again later" >&2; exit 75 ;;
  bad-input) echo "row 12: malformed date" >&2; exit 4 ;;
  oom) echo "java.lang.OutOfMemoryError: Java heap space" >&2; exit 1 ;;
esac
echo "done"
