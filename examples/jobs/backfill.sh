#!/usr/bin/env bash
# A long backfill that the demo cancels while it runs; it starts a child of its own, killed with it.
echo "backfilling day by day"
sleep 600 &
for day in $(seq 1 600); do echo "day ${day}"; sleep 1; done
