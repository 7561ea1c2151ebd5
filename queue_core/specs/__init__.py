"""Raw documents (JSON, YAML, DataOS files) in, normalized specs out, or one clear error; pure: no Redis, no I/O but reading a file."""
