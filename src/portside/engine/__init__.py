"""The engine: the daemon, its Docker Engine API, container state, lifecycle and volumes.

Layout: `options` (pure parsers of Docker's flag syntaxes), `spec` (Docker config ->
runtime spec), `state` (SQLite records), `containers` (the lifecycle), `monitor` (exits,
restart policies), `health`, `events`, `volumes`, and `api/` (thin aiohttp handlers).
"""
