#!/usr/bin/env bash
# One step of the example ETL workflow: says which step it is and the date it stands for.
set -euo pipefail
step="${1:-step}"
echo "step=${step} logical_date=${JOBLEDGER_LOGICAL_DATE:-none} run=${JOBLEDGER_RUN_ID}"
sleep "${STEP_SECONDS:-0.2}"
echo "step=${step} done"
