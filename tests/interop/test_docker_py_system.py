"""docker-py (PyPI) against portside's daemon: ping, version, info and the event stream."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import docker
import pytest

pytestmark = pytest.mark.interop


def test_ping_version_info(dockerpy: docker.DockerClient) -> None:
    assert dockerpy.ping() is True
    assert dockerpy.api.api_version == "1.43"  # negotiated from /version
    v = dockerpy.version()
    assert v["ApiVersion"] == "1.43" and v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux" and v["Version"]
    assert any(c["Name"] == "Engine" for c in v["Components"])
    c = dockerpy.containers.run("busybox", "sleep 300", detach=True)
    dockerpy.containers.create("busybox", "true")
    info = dockerpy.info()
    assert info["Containers"] == 2 and info["ContainersRunning"] == 1
    assert info["ContainersStopped"] == 1 and info["ContainersPaused"] == 0
    assert info["Images"] >= 1 and info["NCPU"] >= 1 and info["MemTotal"] > 0
    assert info["OSType"] == "linux" and info["ServerVersion"] == v["Version"]
    # the default log driver, as each container's HostConfig names it
    assert info["LoggingDriver"] == "json-file"
    assert c.attrs["HostConfig"]["LogConfig"]["Type"] == info["LoggingDriver"]
    c.pause()
    assert dockerpy.info()["ContainersPaused"] == 1
    c.remove(force=True)


def _actions(events: list[dict[str, Any]]) -> list[str]:
    return [e["Action"] for e in events]


def test_events_of_a_run(dockerpy: docker.DockerClient) -> None:
    start = datetime.datetime.now(datetime.UTC)
    live: list[dict[str, Any]] = []
    stream = dockerpy.events(decode=True, filters={"type": "container", "container": "ev"})

    def read() -> None:
        for e in stream:
            live.append(e)
            if e["Action"] == "destroy":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    dockerpy.containers.run("busybox", "true", name="ev", labels={"job": "7"}, remove=True)
    reader.join(30)
    stream.close()
    assert not reader.is_alive()
    assert _actions(live) == ["create", "start", "die", "destroy"]
    die = live[2]
    assert die["Type"] == "container" and die["Actor"]["Attributes"]["name"] == "ev"
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["Actor"]["Attributes"]["job"] == "7"
    assert die["Actor"]["Attributes"]["image"] == "busybox"
    assert die["id"] == die["Actor"]["ID"] and die["status"] == "die"
    assert isinstance(die["time"], int) and isinstance(die["timeNano"], int)

    # the same, afterwards, from the ring: since and until bound the stream
    end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    past = list(dockerpy.events(decode=True, since=start, until=end,
                                filters={"container": "ev"}))
    assert _actions(past) == ["create", "start", "die", "destroy"]
    only = list(dockerpy.events(decode=True, since=start, until=end,
                                filters={"event": ["start", "die"], "label": "job=7"}))
    assert _actions(only) == ["start", "die"]
    assert list(dockerpy.events(decode=True, since=start, until=end,
                                filters={"container": "other"})) == []
    raw = b"".join(dockerpy.events(since=start, until=end, filters={"container": "ev"}))
    assert raw.count(b"\n") == 4  # one JSON document a line
