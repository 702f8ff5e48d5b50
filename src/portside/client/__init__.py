"""The remote implementation of the engine interface: the daemon behind its unix socket.

`transport` is the HTTP/1.1 client (import-light: it is on the hot path of `portside run`),
`remote` maps the engine interface onto the Docker Engine API paths. Nothing else in
portside knows an HTTP path of the daemon.
"""
