"""The log's bytes: events, the store and its Lua append, chain, archive, export, import, connection."""
