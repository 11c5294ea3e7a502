"""Storage: the SQLite file and every query on it.

`schema` (tables, migrations), `store` (`TraceStore`), `stats`, `search` (full-text
index), `ids` (trace ids people can type), `graph` (observed-graph rows), `scores`,
`locking` (bounded retry of writes that meet a lock).
"""
