"""The daemon answers malformed Docker API input with 4xx and a message, never a 500."""

from __future__ import annotations

import json
import socket
from typing import Any

from helpers.daemon import PortsideDaemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.client.transport import Response

junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**10), st.text(max_size=12),
                 st.lists(st.text(max_size=8), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
host_config = st.fixed_dictionaries({}, optional={
    k: junk for k in ("Binds", "Mounts", "Memory", "MemorySwap", "NanoCpus", "CpuQuota",
                      "PidsLimit", "RestartPolicy", "AutoRemove", "CapAdd", "Tmpfs",
                      "NetworkMode", "LogConfig", "SecurityOpt", "PortBindings")})
bodies = st.fixed_dictionaries({"Image": st.sampled_from(["busybox", "nope", ""])}, optional={
    "Cmd": junk, "Entrypoint": junk, "Env": junk, "Labels": junk, "User": junk,
    "WorkingDir": junk, "Healthcheck": junk, "StopSignal": junk, "HostConfig": host_config,
})


def _post(sock_path: str, path: str, body: Any) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    data = json.dumps(body).encode()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
              + data)
    resp = Response(s)
    return resp.status, resp.read()


def test_create_with_junk_is_a_client_error(daemon: PortsideDaemon) -> None:
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(bodies)
    def check(body: dict[str, Any]) -> None:
        status, raw = _post(str(daemon.socket), "/v1.43/containers/create", body)
        assert status in (201, 400, 404, 409), (status, raw, body)
        doc = json.loads(raw)
        if status == 201:
            _post(str(daemon.socket), f"/containers/{doc['Id']}/kill", None)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(daemon.socket))
            s.sendall(f"DELETE /containers/{doc['Id']}?force=1 HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n".encode())
            Response(s).read()
        else:
            assert doc["message"]

    check()
    status, raw = _post(str(daemon.socket), "/containers/create", "not an object")
    assert status == 400
