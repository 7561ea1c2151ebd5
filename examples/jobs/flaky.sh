#!/usr/bin/env bash
# Fails its first two attempts and succeeds on the third: shows retries with a delay.
echo "attempt ${JOBLEDGER_ATTEMPT} of run ${JOBLEDGER_RUN_ID}"
if [ "${JOBLEDGER_ATTEMPT}" -lt 3 ]; then
  echo "upstream not ready yet" >&2
  exit 1
fi
echo "upstream ready: report written"
