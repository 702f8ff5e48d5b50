"""An error raised in the daemon reaches a portside client as the same class with its facts."""

from __future__ import annotations

import pytest
from helpers.daemon import PortsideDaemon

from portside.client.remote import RemoteEngine
from portside.client.transport import Client
from portside.engine.errors import StartFailed
from portside.engine.interface import CreateOptions
from portside.engine.state import NoSuchContainer


def test_the_engine_class_and_facts_arrive(daemon: PortsideDaemon) -> None:
    engine = RemoteEngine(Client(daemon.socket, autostart=False))
    with pytest.raises(NoSuchContainer) as caught:
        engine.containers.inspect("nosuch")
    assert caught.value.ref == "nosuch"
    assert str(caught.value) == "No such container: nosuch"


def test_start_failure_carries_its_exit_code(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "busybox", "/nosuchcommand", check=False)
    assert r.returncode == 127
    assert r.stderr.count("\n") == 1 and "executable file not found" in r.stderr
    containers = RemoteEngine(Client(daemon.socket, autostart=False)).containers
    cid = containers.create(CreateOptions({"Image": "busybox", "Cmd": ["/nosuchcommand"]})).id
    with pytest.raises(StartFailed) as caught:
        containers.start(cid)
    assert caught.value.exit_code == 127
    containers.remove(cid, force=True)
