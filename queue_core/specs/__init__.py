"""Raw documents in (JSON, YAML, DataOS files), normalized specs out, or one clear error; pure, no Redis."""
