#!/usr/bin/env bash
# Loads the orders the count task found: its value arrives as an argument; publishes what it loaded.
set -euo pipefail
echo "loading $1 orders"
echo "{\"loaded\": $1}" > "$JOBLEDGER_VALUES_FILE"
