"""The remote implementation of the engine interface: the daemon behind its unix socket.

`transport` is the HTTP/1.1 client (import-light: it is on the hot path of `portside run`),
`runpath` the few calls of `portside run` on top of it (as light), and `remote` maps the
whole engine interface onto the Docker Engine API paths. Nothing else in portside knows an
HTTP path of the daemon (tests/unit/client/test_api_paths.py checks it).
"""
