"""Issue 4's command examples end to end through the CLI: aliases, fixed addresses, --dns,
--add-host, -P, --network none and container:<name>, `port`, and the daemon's restart."""

from __future__ import annotations

import json
import subprocess
import urllib.request

from helpers.daemon import PortsideDaemon

HTTPD = "mkdir -p /www && echo served > /www/index.html && httpd -f -p 80 -h /www"


def _served(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return resp.read() == b"served\n"
    except OSError:
        return False


def test_alias_fixed_address_and_names(daemon: PortsideDaemon) -> None:
    daemon.cli("network", "create", "--subnet", "10.241.1.0/24", "flagnet")
    daemon.cli("run", "-d", "--name", "db", "--network", "flagnet", "--network-alias",
               "database", "--ip", "10.241.1.50", "busybox", "sleep", "300")
    r = daemon.cli("run", "--rm", "--network", "flagnet", "busybox", "nslookup", "database")
    assert "10.241.1.50" in r.stdout
    r = daemon.cli("run", "--rm", "--network", "flagnet", "busybox", "ping", "-c1", "-W5", "db")
    assert "1 packets received" in r.stdout
    net = daemon.inspect("db")["NetworkSettings"]["Networks"]["flagnet"]
    assert net["IPAddress"] == "10.241.1.50" and "database" in net["Aliases"]
    r = daemon.cli("run", "--rm", "--network", "flagnet", "--ip", "10.241.1.50", "busybox",
                   "true", check=False)
    assert r.returncode == 125 and "10.241.1.50" in r.stderr and "Traceback" not in r.stderr
    r = daemon.cli("run", "--rm", "--network-alias", "x", "busybox", "true", check=False)
    assert r.returncode != 0 and "user-defined networks" in r.stderr
    daemon.cli("rm", "-f", "db")
    daemon.cli("network", "rm", "flagnet")


def test_dns_search_and_add_host(daemon: PortsideDaemon) -> None:
    daemon.cli("network", "create", "--subnet", "10.241.2.0/24", "dnsnet")
    r = daemon.cli("run", "--rm", "--network", "dnsnet", "--dns", "192.0.2.53", "--dns-search",
                   "example.org", "--add-host", "gw.local:10.1.2.3", "busybox", "sh", "-c",
                   "cat /etc/resolv.conf; echo ---; cat /etc/hosts")
    resolv, hosts = r.stdout.split("---\n")
    servers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert servers == ["127.0.0.11"]  # Docker's: its own server, forwarding to --dns
    assert "search example.org" in resolv
    assert "10.1.2.3\tgw.local" in hosts
    r = daemon.cli("run", "--rm", "--dns", "192.0.2.53", "busybox", "cat", "/etc/resolv.conf")
    assert [x for x in r.stdout.splitlines() if x.startswith("nameserver")] == [
        "nameserver 192.0.2.53"]  # the default bridge: --dns only, as Docker
    r = daemon.cli("run", "--rm", "--dns", "not-an-ip", "busybox", "true", check=False)
    assert r.returncode != 0 and r.stderr.count("\n") == 1
    daemon.cli("network", "rm", "dnsnet")


def test_publish_all_port_and_container_mode(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "-P", "--expose", "80", "--hostname", "webhost",
               "busybox", "sh", "-c", HTTPD)
    out = daemon.cli("port", "web").stdout
    assert out.startswith("80/tcp -> 0.0.0.0:")
    port = int(out.splitlines()[0].rsplit(":", 1)[1])
    daemon.wait_for(lambda: _served(port), what="the -P port to answer")
    r = daemon.cli("run", "--rm", "--network", "container:web", "busybox", "sh", "-c",
                   "wget -qO- localhost:80; hostname")
    assert r.stdout == "served\nwebhost\n"
    r = daemon.cli("run", "--rm", "--network", "container:nosuch", "busybox", "true",
                   check=False)
    assert r.returncode == 125 and "nosuch" in r.stderr
    daemon.cli("stop", "-t", "0", "web")
    r = daemon.cli("run", "--rm", "--network", "container:web", "busybox", "true", check=False)
    assert r.returncode == 125 and "non running" in r.stderr
    assert daemon.cli("ps", "-q", "--filter", "status=created").stdout == ""


def test_none_has_only_lo(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]


def test_daemon_restart_releases_dead_endpoints_and_stop_drops_idle_bridges(
        daemon: PortsideDaemon) -> None:
    daemon.cli("network", "create", "--subnet", "10.241.3.0/24", "restartnet")
    bridge = json.loads(daemon.cli("network", "inspect", "restartnet").stdout)[0][
        "Options"]["com.docker.network.bridge.name"]
    cid = daemon.cli("run", "-d", "--network", "restartnet", "busybox", "sleep", "300"
                     ).stdout.strip()
    daemon.stop()
    from portside.runtime import Runtime

    rt = Runtime(daemon.root / "runtime")
    rt.kill(cid, "SIGKILL")  # dies while no daemon runs
    rt.wait(cid, 30)
    rt.close()
    daemon.start()
    assert daemon.inspect(cid)["State"]["Status"] == "exited"
    doc = json.loads(daemon.cli("network", "inspect", "restartnet").stdout)[0]
    assert doc["Containers"] == {}
    daemon.cli("rm", cid)
    daemon.stop()  # no endpoint left on the network: its bridge goes with the daemon
    r = subprocess.run(["ip", "link", "show", bridge], capture_output=True, check=False)
    assert r.returncode != 0
    daemon.start()
    daemon.cli("run", "--rm", "--network", "restartnet", "busybox", "true")  # comes back
    daemon.cli("network", "rm", "restartnet")
