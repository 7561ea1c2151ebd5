#!/usr/bin/env bash
# Counts "new orders" (the first argument, for the example) and publishes the count for the tasks after it.
set -euo pipefail
count="${1:-0}"
echo "found $count new orders"
jobledger-values set n "$count"
jobledger-values set source '"orders.csv"'
