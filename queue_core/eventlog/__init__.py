"""The log's bytes: events and their envelope, the store and its Lua append, the chain, archive, export and import, the connection; the only code that reads or writes the log."""
