#!/usr/bin/env bash
# Lists the cities to report on and publishes them, as a JSON list under "cities", for a for-each task.
set -euo pipefail
jobledger-values set cities '["paris", "oslo", "atlantis", "lima"]'
