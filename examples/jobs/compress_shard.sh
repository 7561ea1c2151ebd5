#!/usr/bin/env bash
# Compresses the shard with its own index, once the export of that shard (child i of the upstream array) succeeded.
echo "compressing shard $JOBLEDGER_ARRAY_INDEX"
