#!/usr/bin/env bash
# Always exits 3: fails, is retried once, and fails for good with NonZeroExitCode.
echo "exporting..."
echo "export target refused the connection" >&2
exit 3
