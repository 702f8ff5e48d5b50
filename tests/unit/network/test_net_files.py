"""/etc/hosts, /etc/resolv.conf and /etc/hostname as Docker writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.network import files
from portside.network.errors import InvalidNetworkArgument
from portside.network.store import Attachment


def _att(ip: str, gw: str, dns: bool) -> Attachment:
    return Attachment(container_id="c" * 64, network="n", network_id="i", ip=ip, prefix=24,
                      gateway=gw, dns_servers=[gw] if dns else [])


@pytest.fixture
def host_resolv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "host-resolv.conf"
    p.write_text("# host\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n"
                 "search corp.example\noptions edns0 ndots:2\n")
    monkeypatch.setattr(files, "HOST_RESOLV", p)
    return p


def test_user_network_uses_its_dns(tmp_path: Path, host_resolv: Path) -> None:
    paths = files.write_container_files(
        tmp_path / "c", "web", [_att("10.210.0.2", "10.210.0.1", True),
                                _att("10.210.1.2", "10.210.1.1", True)],
        add_hosts=["db.local:10.1.1.1", "gw=host-gateway"])
    assert set(paths) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
    resolv = Path(paths["/etc/resolv.conf"]).read_text()
    assert resolv == ("nameserver 10.210.0.1\nnameserver 10.210.1.1\nsearch corp.example\n"
                      "options ndots:0 edns0\n")
    hosts = Path(paths["/etc/hosts"]).read_text().splitlines()
    assert hosts[0] == "127.0.0.1\tlocalhost"
    assert hosts[-3:] == ["10.1.1.1\tdb.local", "10.210.0.1\tgw", "10.210.0.2\tweb"]
    assert Path(paths["/etc/hostname"]).read_text() == "web\n"


def test_default_bridge_uses_host_resolvers_without_loopback(tmp_path: Path,
                                                             host_resolv: Path) -> None:
    text = files.resolv_conf([_att("172.17.0.2", "172.17.0.1", False)])
    assert text == "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 ndots:2\n"
    text = files.resolv_conf([_att("172.17.0.2", "172.17.0.1", False)], dns=["9.9.9.9"],
                             dns_search=["a.example"], dns_options=["rotate"])
    assert text == "nameserver 9.9.9.9\nsearch a.example\noptions rotate\n"
    host_resolv.write_text("nameserver 127.0.0.53\n")
    assert files.resolv_conf([]) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_domainname_and_bad_add_host(tmp_path: Path, host_resolv: Path) -> None:
    text = files.hosts_file("web", [_att("10.210.0.2", "10.210.0.1", True)],
                            domainname="example.org")
    assert text.endswith("10.210.0.2\tweb.example.org web\n")
    for bad in ("nohost", "x:notanip", ":1.2.3.4"):
        with pytest.raises(InvalidNetworkArgument):
            files.parse_add_host(bad)
    with pytest.raises(InvalidNetworkArgument, match="gateway"):
        files.hosts_file("web", [], ["gw:host-gateway"])


def test_dns_on_a_user_network_is_the_containers_own_server(tmp_path: Path,
                                                           host_resolv: Path) -> None:
    """As Docker: 127.0.0.11 only; that server forwards to the --dns servers."""
    text = files.resolv_conf([_att("10.210.0.2", "10.210.0.1", True)], dns=["9.9.9.9"],
                             dns_search=["a.example"])
    assert text == "nameserver 127.0.0.11\nsearch a.example\noptions ndots:0 edns0\n"
    text = files.resolv_conf([_att("172.17.0.2", "172.17.0.1", False),
                              _att("10.210.0.2", "10.210.0.1", True)], dns=["9.9.9.9"])
    assert text.startswith("nameserver 127.0.0.11\nsearch")
