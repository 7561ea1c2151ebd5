#!/usr/bin/env bash
# A daily report: the day it reports on is the schedule's tick (the logical date), not the day it runs.
set -euo pipefail
day="${2:-unknown}"
echo "report for ${day} (logical date ${JOBLEDGER_LOGICAL_DATE:-none}, run ${JOBLEDGER_RUN_ID})"
