"""Events carry revisions and survive a daemon restart: a client that resumes with
`after_revision` gets exactly the events it missed, and Docker clients still read them."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import quote

from helpers.daemon import PortsideDaemon

from portside.client.remote import RemoteEngine
from portside.client.transport import Client, Response
from portside.engine.interface import EventOptions


def _events(daemon: PortsideDaemon, query: str) -> tuple[int, list[dict[str, Any]]]:
    """GET /events?<query>&until=now: what the daemon has kept, then the stream ends."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(daemon.socket))
    s.sendall(f"GET /v1.43/events?{query}&until={time.time():.9f} HTTP/1.1\r\nHost: x\r\n"
              "Connection: close\r\n\r\n".encode())
    resp = Response(s)
    body = resp.read()
    s.close()
    if resp.status != 200:
        return resp.status, [json.loads(body)]
    return 200, [json.loads(line) for line in body.splitlines() if line.strip()]


def _summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in events]


def test_resume_after_a_restart_returns_exactly_the_missed_events(
        daemon: PortsideDaemon) -> None:
    daemon.cli("volume", "create", "before1")
    daemon.cli("volume", "create", "before2")
    status, seen = _events(daemon, "since=0")
    assert status == 200
    assert _summary(seen)[-2:] == [("volume", "create", "before1"),
                                   ("volume", "create", "before2")]
    revisions = [e["revision"] for e in seen]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    last = seen[-1]["revision"]

    daemon.stop()
    daemon.start()
    daemon.cli("volume", "create", "after1")
    daemon.cli("volume", "rm", "before1")
    daemon.cli("run", "--rm", "--name", "ev", "busybox", "true")

    daemon.wait_for(lambda: ("container", "destroy") in [
        (t, a) for t, a, _ in _summary(_events(daemon, f"after_revision={last}")[1])],
        what="the destroy event of the --rm container")
    status, missed = _events(daemon, f"after_revision={last}")
    assert status == 200
    cid = missed[2]["Actor"]["ID"]
    assert len(cid) == 64
    # Docker's order, network events (actor: the network) between the container's
    assert [(t, a) for t, a, _ in _summary(missed)] == [
        ("volume", "create"), ("volume", "destroy"), ("container", "create"),
        ("network", "connect"), ("container", "start"), ("container", "die"),
        ("network", "disconnect"), ("container", "destroy")]
    assert [i for t, _, i in _summary(missed) if t == "container"] == [cid] * 4
    assert {e["Actor"]["Attributes"]["container"] for e in missed if e["Type"] == "network"
            } == {cid}
    assert missed[2]["Actor"]["Attributes"]["name"] == "ev"
    revisions = [e["revision"] for e in missed]
    assert revisions[0] > last and revisions == sorted(set(revisions))

    # the kept events survived the restart; `since` still works on them
    status, everything = _events(daemon, "since=0")
    assert everything[:len(seen)] == seen and everything[len(seen):] == missed
    # filters apply to a resume as to `since`
    status, volumes = _events(daemon, f"after_revision={last}&filters="
                              + quote(json.dumps({"type": ["volume"]})))
    assert _summary(volumes) == _summary(missed)[:2]

    # the engine interface's remote implementation resumes the same way
    remote = RemoteEngine(Client(daemon.socket, autostart=False))
    through_api = list(remote.system.events(EventOptions(after_revision=last,
                                                          until=f"{time.time():.9f}")))
    assert [(e.type, e.action, e.actor_id, e.revision) for e in through_api] == [
        (e["Type"], e["Action"], e["Actor"]["ID"], e["revision"]) for e in missed]

    # Docker's client ignores the field portside adds
    out = daemon.docker("events", "--since", "0", "--until", str(int(time.time()) + 1),
                        "--filter", "type=volume", "--format", "{{json .}}").stdout
    assert [json.loads(line)["Actor"]["ID"] for line in out.splitlines()] == [
        "before1", "before2", "after1", "before1"]


def test_a_bad_revision_is_a_client_error(daemon: PortsideDaemon) -> None:
    status, body = _events(daemon, "after_revision=yesterday")
    assert status == 400 and "after_revision" in body[0]["message"]


def test_the_cli_resumes_after_a_revision(daemon: PortsideDaemon) -> None:
    daemon.cli("volume", "create", "first")
    until = f"{time.time() + 1:.0f}"
    seen = [json.loads(line) for line in daemon.cli(
        "system", "events", "--since", "0", "--until", until, "--format", "json",
        "--filter", "type=volume").stdout.splitlines()]
    assert [e["Actor"]["ID"] for e in seen] == ["first"]
    daemon.cli("volume", "create", "second")
    until = f"{time.time() + 1:.0f}"
    resumed = [json.loads(line) for line in daemon.cli(
        "events", "--after-revision", str(seen[-1]["revision"]), "--until", until,
        "--format", "json", "--filter", "type=volume").stdout.splitlines()]
    assert [e["Actor"]["ID"] for e in resumed] == ["second"]
    assert resumed[0]["revision"] > seen[-1]["revision"]
