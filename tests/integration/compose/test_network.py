"""Services on the project network: names, replicas behind one name, published ports,
project isolation, and the example application. Needs the daemon's network API."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import Project

EXAMPLE = Path(__file__).parents[3] / "examples" / "compose"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def needs_networks(project: Project) -> None:
    from portside.client.transport import Client

    client = Client(project.daemon.socket, autostart=False)
    try:
        client.get("/networks")
    except Exception as exc:  # noqa: BLE001 - any failure means no network API
        pytest.skip(f"the daemon has no network API yet ({exc})")


def get(url: str, attempts: int = 60) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url}")


def app(subnet: str, port: int) -> str:
    return f"""
services:
  web:
    image: busybox
    command: sh -c "hostname > /www-index; mkdir -p /www; mv /www-index /www/index.html; exec httpd -f -p 80 -h /www"
    init: true
    deploy: {{replicas: 2}}
  front:
    image: busybox
    command: sh -c "mkdir -p /www; echo front > /www/index.html; exec httpd -f -p 80 -h /www"
    init: true
    ports: ["127.0.0.1:{port}:80"]
  client:
    image: busybox
    command: sleep 1000
    init: true
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
"""


def api(project: Project) -> object:
    from portside.client.transport import Client

    return Client(project.daemon.socket, autostart=False)


def test_networks_ports_and_isolation(project: Project) -> None:
    needs_networks(project)
    port = free_port()
    project.write(app("10.230.207.0/24", port))
    p = project.name
    project.compose("up", "-d", "--wait")
    assert get(f"http://127.0.0.1:{port}/") == "front\n"
    client = api(project)
    net = client.get(f"/networks/{p}_default")  # type: ignore[attr-defined]
    assert net["Labels"]["com.docker.compose.project"] == p
    assert net["Labels"]["com.docker.compose.network"] == "default"
    assert net["IPAM"]["Config"][0]["Subnet"] == "10.230.207.0/24"
    # containers reach each other by container name on the project network
    project.compose("exec", "-T", "client", "wget", "-q", "-O", "/dev/null",
                    f"http://{p}-front-1/")

    # a second project with the same service names has its own network
    other = Project(project.daemon, project.folder.parent / "other")
    other.write(app("10.230.208.0/24", free_port()))
    try:
        other.compose("up", "-d", "--wait")
        reach = project.compose("exec", "-T", "client", "wget", "-q", "-T", "2", "-O",
                                "/dev/null", f"http://{other.name}-front-1/", check=False)
        assert reach.returncode != 0
    finally:
        other.compose("down", "-t", "0")
    project.compose("down", "-t", "0")
    from portside.errors import NotFound

    with pytest.raises(NotFound):
        client.get(f"/networks/{p}_default")  # type: ignore[attr-defined]


def test_service_names_and_replicas(project: Project) -> None:
    needs_networks(project)
    project.write(app("10.230.209.0/24", free_port()))
    p = project.name
    project.compose("up", "-d", "--wait")
    # the service name resolves to every replica (DNS round-robin), and each answers
    ips = set()
    for n in (1, 2):
        nets = project.daemon.inspect(f"{p}-web-{n}")["NetworkSettings"]["Networks"]
        ips.add(nets[f"{p}_default"]["IPAddress"])
    lookup = project.compose("exec", "-T", "client", "nslookup", "web").stdout
    found = {word for line in lookup.splitlines() if line.startswith("Address")
             for word in line.split() if word.startswith("10.230.209.") and ":" not in word}
    assert found == ips and len(ips) == 2
    names = {project.compose("exec", "-T", "client", "wget", "-q", "-O", "-",
                             f"http://{ip}/").stdout.strip() for ip in ips}
    assert len(names) == 2  # two different replicas (their hostnames)
    assert project.compose("exec", "-T", "client", "wget", "-q", "-O", "-",
                           "http://web/").stdout.strip() in names


def test_example_application(project: Project) -> None:
    needs_networks(project)
    shutil.copytree(EXAMPLE, project.folder, dirs_exist_ok=True)
    port = free_port()
    project.daemon.env.update(WEB_PORT=str(port), TICK_INTERVAL="1")
    project.compose("up", "-d", "--build", "--wait")
    body = ""
    for _ in range(30):
        body = get(f"http://127.0.0.1:{port}/cgi-bin/status")
        if "ticks in the store: (none)" not in body and "unreachable" not in body:
            break
        time.sleep(1)
    assert "ticks in the store: " in body and "worker's last note: tick " in body
    ticks = int(body.split("ticks in the store: ")[1].split()[0])
    assert ticks >= 1
    assert "Hello from portside compose" in get(f"http://127.0.0.1:{port}/")
    rows = {r["Service"]: r for r in project.ps()}
    assert set(rows) == {"store", "worker", "web"}
    assert all("(healthy)" in r["Status"] for r in rows.values())
    project.compose("down", "-v", "-t", "1")
    assert project.ps("-a") == []


def test_down_removes_networks_dropped_from_the_file(project: Project) -> None:
    needs_networks(project)
    project.write("services:\n  app:\n    image: busybox\n    command: sleep 1000\n"
                  "    init: true\n    networks: [extra]\n"
                  "networks:\n  extra:\n    ipam:\n      config: [{subnet: 10.230.210.0/24}]\n")
    project.compose("up", "-d")
    client = api(project)
    assert client.get(f"/networks/{project.name}_extra")  # type: ignore[attr-defined]
    project.write("services:\n  app:\n    image: busybox\n    command: sleep 1000\n")
    project.compose("down", "-t", "0")
    from portside.errors import NotFound

    with pytest.raises(NotFound):
        client.get(f"/networks/{project.name}_extra")  # type: ignore[attr-defined]
    assert project.ps("-a") == []
