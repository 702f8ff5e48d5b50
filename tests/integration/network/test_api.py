"""The /networks API with the portside CLI and the real docker client as clients.

The daemon here is just an aiohttp app with `add_routes` on a private unix socket; the
engine's part (finding a container's namespace) is a lookup of this test's namespaces.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from portside.network.api import ContainerRef, add_routes
from portside.network.errors import NotAttached
from portside.network.manager import NetworkManager

from .conftest import run_in


@pytest.fixture
def api(manager: NetworkManager, netns: Callable[[], Path],
        tmp_path: Path) -> Iterator[tuple[Path, dict[str, ContainerRef]]]:
    containers: dict[str, ContainerRef] = {}

    def lookup(ref: str) -> ContainerRef:
        for c in containers.values():
            if ref in (c.id, c.name) or c.id.startswith(ref):
                return c
        raise NotAttached(ref, "?")

    sock = tmp_path / "api.sock"
    loop = asyncio.new_event_loop()
    app = web.Application()
    add_routes(app, manager, lookup)

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="OK", headers={"API-Version": "1.43"})
    app.router.add_get("/_ping", ping)
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.UnixSite(runner, str(sock)).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield sock, containers
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _portside(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PORTSIDE_SOCKET=str(sock))
    return subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_cli_network_lifecycle(api: tuple[Path, dict[str, ContainerRef]],
                               netns: Callable[[], Path], tmp_path: Path) -> None:
    sock, containers = api
    out = _portside(sock, "network", "create", "--subnet", "10.210.60.0/24",
                    "--label", "team=a", "pst-cli")
    assert out.returncode == 0, out.stderr
    net_id = out.stdout.strip()
    assert len(net_id) == 64

    listing = _portside(sock, "network", "ls").stdout
    assert "pst-cli" in listing and "bridge" in listing and "host" in listing
    assert "none" in listing and net_id[:12] in listing

    again = _portside(sock, "network", "create", "--subnet", "10.210.60.0/25", "pst-cli2")
    assert again.returncode != 0
    assert again.stderr.strip() == "Error: subnet 10.210.60.0/25 overlaps with network pst-cli"

    ns = netns()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "resolv.conf").write_text("")
    containers["web"] = ContainerRef("a" * 64, "web", "webhost", str(ns), tmp_path / "files")
    out = _portside(sock, "network", "connect", "--alias", "www", "--ip", "10.210.60.9",
                    "pst-cli", "web")
    assert out.returncode == 0, out.stderr
    assert "10.210.60.9/24" in run_in(ns, "ip", "-o", "addr").stdout
    assert "nameserver 10.210.60.1" in (tmp_path / "files" / "resolv.conf").read_text()

    doc = json.loads(_portside(sock, "network", "inspect", "pst-cli").stdout)[0]
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.210.60.0/24", "Gateway": "10.210.60.1"}]
    assert doc["Labels"] == {"team": "a"}
    assert doc["Containers"]["a" * 64]["IPv4Address"] == "10.210.60.9/24"

    busy = _portside(sock, "network", "rm", "pst-cli")
    assert busy.returncode != 0 and "active endpoints" in busy.stderr
    assert _portside(sock, "network", "disconnect", "pst-cli", "web").returncode == 0
    assert "eth0" not in run_in(ns, "ip", "-o", "link").stdout
    assert _portside(sock, "network", "rm", "pst-cli").stdout.strip() == "pst-cli"
    missing = _portside(sock, "network", "inspect", "pst-cli")
    assert missing.returncode != 0 and "network pst-cli not found" in missing.stderr

    _portside(sock, "network", "create", "--subnet", "10.210.62.0/24", "pst-prune")
    pruned = _portside(sock, "network", "prune", "-f")
    assert "pst-prune" in pruned.stdout


@pytest.mark.interop
@pytest.mark.skipif(not shutil.which("docker"), reason="needs the docker client")
def test_docker_client_manages_networks(api: tuple[Path, dict[str, ContainerRef]]) -> None:
    sock, _ = api
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(sock.parent))

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    out = docker("network", "create", "--subnet", "10.210.61.0/24", "--internal", "pst-dk")
    assert out.returncode == 0, out.stderr
    ls = docker("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert "pst-dk bridge" in ls.stdout.splitlines(), ls.stdout + ls.stderr
    doc = json.loads(docker("network", "inspect", "pst-dk").stdout)[0]
    assert doc["Internal"] is True and doc["IPAM"]["Config"][0]["Subnet"] == "10.210.61.0/24"
    assert docker("network", "rm", "pst-dk").returncode == 0
    gone = docker("network", "inspect", "pst-dk")
    assert gone.returncode != 0 and "not found" in gone.stderr
    assert docker("network", "rm", "host").returncode != 0
