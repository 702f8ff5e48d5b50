"""Service VIPs and load balancing in the kernel (network/services.py), driven directly.

Backends are network namespaces attached by the NetworkManager, as a task's container
is, each running busybox httpd with a CGI script that answers the backend's name and the
client address it sees (REMOTE_ADDR), and a busybox nc echo server on port 7000 that says
its name first. Clients: the host, a namespace on the service's network (a container's
view), a backend itself (hairpin) and an "outside" namespace linked to the host by a veth.
Names here start with `lb-`; everything is removed after each test.
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

from portside.network.balancer import Backend, ServiceEndpoint, ServicePort
from portside.network.errors import InvalidNetworkArgument, NetworkInUse, PortInUse
from portside.network.manager import NetworkManager
from portside.network.netns import NETNS_DIR, create_netns, delete_netns

from .conftest import BUSYBOX, run_in, wait_listening


@dataclass
class Task:
    id: str
    ns: Path
    address: str
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture
def lbns() -> Iterator[Callable[[], Path]]:
    made: list[Path] = []

    def make() -> Path:
        path = create_netns(f"lb-{secrets.token_hex(5)}", NETNS_DIR)
        made.append(path)
        return path

    yield make
    for p in made:
        delete_netns(p)


@pytest.fixture
def tasks(manager: NetworkManager, lbns: Callable[[], Path], tmp_path: Path
          ) -> Iterator[Callable[[str, str], Task]]:
    """Factory: a task on a network serving HTTP on 80 and a named echo on 7000."""
    made: list[Task] = []

    def make(name: str, network: str) -> Task:
        ns = lbns()
        tid = name + secrets.token_hex(8)
        att = manager.attach(tid.ljust(64, "0"), ns, network, container_name=f"lb-{name}")
        www = tmp_path / name
        (www / "cgi-bin").mkdir(parents=True)
        script = www / "cgi-bin" / "peer"
        script.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                          f"echo \"{name} $REMOTE_ADDR\"\n")
        script.chmod(0o755)
        httpd = subprocess.Popen(["nsenter", f"--net={ns}", BUSYBOX, "httpd", "-f", "-p", "80",
                                  "-h", str(www)])
        echo = subprocess.Popen(["nsenter", f"--net={ns}", BUSYBOX, "nc", "-ll", "-p", "7000",
                                 "-e", "/bin/sh", "-c", f"echo {name}; exec cat"])
        task = Task(tid, ns, att.ip, [httpd, echo])
        made.append(task)
        wait_listening(ns, 80)
        wait_listening(ns, 7000)
        return task

    yield make
    for t in made:
        for p in t.procs:
            p.kill()
            p.wait()


@pytest.fixture
def balanced(manager: NetworkManager) -> Iterator[NetworkManager]:
    """The manager, with its services forgotten before the rest is purged."""
    yield manager
    manager.balancer().purge()


def _get(host: str, port: int = 80, path: str = "/cgi-bin/peer") -> str:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
        return r.read().decode().strip()


def _get_in(ns: Path, url: str) -> str:
    res = run_in(ns, "wget", "-qO-", url)  # (busybox 1.35 wget -T crashes)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _endpoint(sid: str, net: str, backends: list[Task], healthy: set[str] | None = None,
              **kw: object) -> ServiceEndpoint:
    return ServiceEndpoint(
        service_id=sid, name=kw.pop("name", "lb-web"),  # type: ignore[arg-type]
        networks=(net,), backends=tuple(
            Backend(t.id, net, t.address, healthy is None or t.id in healthy)
            for t in backends), **kw)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def _nslookup(ns: Path, name: str, server: str) -> set[str]:
    out = run_in(ns, "nslookup", name, server).stdout
    answers = out.split("Name:", 1)[1] if "Name:" in out else ""
    return set(re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)", answers))


def _table(m: NetworkManager) -> str:
    res = subprocess.run(["nft", "list", "table", "ip", m.balancer().table],
                         capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


def test_vip_spreads_over_backends_from_host_and_network(
        balanced: NetworkManager, tasks: Callable[[str, str], Task],
        lbns: Callable[[], Path]) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    backends = [tasks(n, net.name) for n in ("a", "b", "c")]
    vips = m.balancer().apply(_endpoint("lbsvc1", net.id, backends,
                                        ports=(ServicePort(80),)))
    vip = vips[net.id]
    assert vip.startswith(net.subnet.rsplit(".", 1)[0] + ".")
    assert vip not in {t.address for t in backends} and vip != net.gateway
    seen = {_get(vip).split()[0] for _ in range(40)}
    assert seen == {"a", "b", "c"}

    # a container on the network, by name and by VIP
    client = lbns()
    m.attach("c" * 64, client, net.name, container_name="lb-client")
    assert _nslookup(client, "lb-web", net.gateway) == {vip}
    assert _nslookup(client, "tasks.lb-web", net.gateway) == {t.address for t in backends}
    seen = {_get_in(client, f"http://{vip}/cgi-bin/peer").split()[0] for _ in range(30)}
    assert seen == {"a", "b", "c"}

    # a task calling its own service (hairpin) gets an answer
    assert _get_in(backends[0].ns, f"http://{vip}/cgi-bin/peer").split()[0] in "abc"

    # a second service never gets the same VIP, and a container never gets a VIP
    other = m.balancer().apply(_endpoint("lbsvc2", net.id, backends[:1], name="lb-api",
                                         ports=(ServicePort(80),)))
    assert other[net.id] != vip
    ns = lbns()
    late = m.attach("d" * 64, ns, net.name)
    assert late.ip not in (vip, other[net.id])


def test_health_change_and_established_connections(
        balanced: NetworkManager, tasks: Callable[[str, str], Task]) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    a, b = tasks("a", net.name), tasks("b", net.name)
    ep = _endpoint("lbsvc", net.id, [a, b], ports=(ServicePort(80), ServicePort(7000)))
    vip = m.balancer().apply(ep)[net.id]

    with socket.create_connection((vip, 7000), timeout=5) as long_conn:
        stays = long_conn.recv(64).decode().strip()
        assert stays in ("a", "b")
        gone = b if stays == "a" else a
        kept = a if stays == "a" else b
        # the other backend turns unhealthy and a new one comes: one elements-only change
        c = tasks("c", net.name)
        before = _table(m)
        m.balancer().apply(_endpoint("lbsvc", net.id, [a, b, c], healthy={kept.id, c.id},
                                     ports=ep.ports))
        after = _table(m)
        assert gone.address not in after and c.address in after
        assert before.split("elements")[0] == after.split("elements")[0]  # same chains
        answers = [_get(vip).split()[0] for _ in range(30)]
        assert set(answers) == {stays, "c"}
        # the connection made before the change still talks to its backend
        long_conn.sendall(b"still here\n")
        assert long_conn.recv(64) == b"still here\n"

    # removed from the backends altogether; no healthy backend at all: refused
    m.balancer().apply(_endpoint("lbsvc", net.id, [kept], ports=ep.ports))
    assert {_get(vip).split()[0] for _ in range(10)} == {stays}
    m.balancer().apply(_endpoint("lbsvc", net.id, [kept], healthy=set(), ports=ep.ports))
    with pytest.raises(OSError):
        _get(vip)


@pytest.fixture
def outside(lbns: Callable[[], Path]) -> Iterator[tuple[Path, str, str]]:
    """A namespace linked to the host by a veth, as another machine on the LAN: (its
    namespace, its address, the host's address on the link)."""
    ns = lbns()
    link = f"lbo{secrets.token_hex(4)}"
    base = f"10.213.{secrets.randbelow(250) + 1}"
    host_ip, peer_ip = f"{base}.1", f"{base}.2"
    cmds = [["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns",
             str(ns)],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", link], ["ip", "link", "set", link, "up"],
            ["nsenter", f"--net={ns}", "ip", "addr", "add", f"{peer_ip}/30", "dev", "eth0"],
            ["nsenter", f"--net={ns}", "ip", "link", "set", "eth0", "up"],
            ["nsenter", f"--net={ns}", "ip", "route", "add", "default", "via", host_ip]]
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)
        yield ns, peer_ip, host_ip
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)


def test_published_port_keeps_the_client_address(
        balanced: NetworkManager, tasks: Callable[[str, str], Task],
        outside: tuple[Path, str, str]) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    backends = [tasks("a", net.name), tasks("b", net.name)]
    port = _free_port()
    m.balancer().apply(_endpoint("lbpub", net.id, backends,
                                 ports=(ServicePort(80, published=port),)))
    ns, client_ip, host_ip = outside
    seen = set()
    for _ in range(20):
        name, peer = _get_in(ns, f"http://{host_ip}:{port}/cgi-bin/peer").split()
        # no masquerade of an outside client (httpd shows it as a v4-mapped address)
        assert peer.strip("[]").removeprefix("::ffff:") == client_ip
        seen.add(name)
    assert seen == {"a", "b"}
    # and from the host itself
    assert _get("127.0.0.1", port).split()[0] in ("a", "b")

    # the port is the service's now
    with pytest.raises(PortInUse, match=f"{port}/tcp.*service lb-web"):
        m.balancer().apply(_endpoint("lbpub2", net.id, backends, name="lb-other",
                                     ports=(ServicePort(80, published=port),)))


def test_dnsrr_answers_healthy_tasks_without_vip(
        balanced: NetworkManager, tasks: Callable[[str, str], Task],
        lbns: Callable[[], Path]) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    a, b = tasks("a", net.name), tasks("b", net.name)
    vips = m.balancer().apply(_endpoint("lbrr", net.id, [a, b], healthy={a.id},
                                        mode="dnsrr", aliases=("lb-alias",)))
    assert vips == {}
    client = lbns()
    m.attach("e" * 64, client, net.name)
    assert _nslookup(client, "lb-web", net.gateway) == {a.address}
    assert _nslookup(client, "lb-alias", net.gateway) == {a.address}
    assert _nslookup(client, "tasks.lb-web", net.gateway) == {a.address, b.address}
    assert _table(m) == ""  # dnsrr has no kernel part


def test_restore_after_restart_and_nothing_left_after_remove(
        root: Path, balanced: NetworkManager, tasks: Callable[[str, str], Task]) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    backends = [tasks("a", net.name), tasks("b", net.name)]
    vip = m.balancer().apply(_endpoint("lbrs", net.id, backends,
                                       ports=(ServicePort(80),)))[net.id]
    table, link = m.balancer().table, m.balancer().link

    # the kernel state is lost (a reboot of the network stack); a new daemon restores it
    subprocess.run(["nft", "delete", "table", "ip", table], check=True)
    subprocess.run(["ip", "link", "del", link], check=True)
    fresh = NetworkManager(root, default_bridge=m.default_bridge,
                           default_subnet=m.default_subnet)
    try:
        fresh.balancer().restore()
        assert fresh.balancer().vips("lbrs") == {net.id: vip}  # the same VIP
        assert {_get(vip).split()[0] for _ in range(20)} == {"a", "b"}
        with pytest.raises(NetworkInUse, match="service lb-web"):
            fresh.remove(net.id)

        fresh.balancer().remove("lbrs")
        assert _table(fresh) == ""
        assert subprocess.run(["ip", "link", "show", link], capture_output=True).returncode
        hosts = (m.dir / "dns" / "hosts").read_text()
        assert "lb-web" not in hosts and vip not in hosts
        assert not m.backend.range("service-endpoints/")[0]
        assert m.backend.get(f"ipam/{net.id}/{vip}") is None
        fresh.balancer().remove("lbrs")  # again: nothing to do
    finally:
        fresh.close()


def test_bad_input_is_one_line_and_records_nothing(balanced: NetworkManager) -> None:
    m = balanced
    net = m.create(f"lb-net-{secrets.token_hex(3)}")
    bad = [ServiceEndpoint("x", "lb-x", (net.id,), mode="round"),
           ServiceEndpoint("x", "lb-x", (net.id,), ports=(ServicePort(80, "sctp"),)),
           ServiceEndpoint("x", "lb-x", (net.id,), ports=(ServicePort(0),)),
           ServiceEndpoint("x", "lb-x", (net.id,), mode="dnsrr",
                           ports=(ServicePort(80, published=8080),)),
           ServiceEndpoint("x", "lb-x", (net.id,),
                           backends=(Backend("t", net.id, "not-an-ip"),))]
    for ep in bad:
        with pytest.raises(InvalidNetworkArgument) as err:
            m.balancer().apply(ep)
        assert "\n" not in str(err.value) and "lb-x" in str(err.value)
    assert not m.backend.range("service-endpoints/")[0]


def test_real_containers_behind_a_vip_across_a_daemon_restart(daemon: PortsideDaemon) -> None:
    """Busybox httpd containers run by the daemon (crun, conmon) as the tasks; the
    balancer on the daemon's root, as the orchestrator will drive it."""
    from portside.engine.networking import Networking

    net_name = f"lb-real-{secrets.token_hex(3)}"
    daemon.cli("network", "create", net_name)
    names = [f"lb-real-{n}-{secrets.token_hex(2)}" for n in ("a", "b")]
    for name in names:  # GET /etc/hostname answers the task's (container's) name
        daemon.cli("run", "-d", "--name", name, "--hostname", name, "--network", net_name,
                   "busybox", "httpd", "-f", "-p", "80", "-h", "/")
    networking = Networking(daemon.root)
    m = networking.manager
    try:
        net = m.get(net_name)
        backends = tuple(Backend(a.container_id, net.id, a.ip)
                         for a in m.store.attachments(network_id=net.id))
        assert len(backends) == 2
        balancer = networking.balancer()
        vip = balancer.apply(ServiceEndpoint("lbreal", "lb-real", (net.id,),
                                             ports=(ServicePort(80),),
                                             backends=backends))[net.id]
        for a in m.store.attachments(network_id=net.id):
            wait_listening(Path(a.netns), 80)
        assert {_get(vip, path="/etc/hostname") for _ in range(30)} == set(names)

        daemon.stop()  # the containers live on (conmon); the kernel state too
        daemon.start()
        fresh = Networking(daemon.root)
        try:
            fresh.balancer().restore()
            assert fresh.manager.balancer().vips("lbreal") == {net.id: vip}
            assert {_get(vip, path="/etc/hostname") for _ in range(30)} == set(names)
            fresh.balancer().remove("lbreal")
            assert _table(fresh.manager) == ""
        finally:
            fresh.manager.close()
    finally:
        m.balancer().purge()
        m.close()
        for name in names:
            daemon.cli("rm", "-f", name, check=False)
        daemon.cli("network", "rm", net_name, check=False)
