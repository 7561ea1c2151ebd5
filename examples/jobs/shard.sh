#!/usr/bin/env bash
# One shard of an array job: JOBLEDGER_ARRAY_INDEX says which (0 to N-1); the argument, how long to take.
echo "exporting shard $JOBLEDGER_ARRAY_INDEX of run $JOBLEDGER_RUN_ID"
sleep "${1:-0}"
