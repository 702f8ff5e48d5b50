"""docker-py (PyPI) against portside's daemon: volumes and networks, as a docker-py user
creates, lists, connects, prunes and removes them on one host."""

from __future__ import annotations

import datetime
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool
from helpers.daemon import PortsideDaemon

pytestmark = pytest.mark.interop


def test_volumes(dockerpy: docker.DockerClient, daemon: PortsideDaemon) -> None:
    v = dockerpy.volumes.create(name="data", labels={"team": "a"})
    assert v.name == "data" and v.attrs["Driver"] == "local"
    assert v.attrs["Labels"] == {"team": "a"} and v.attrs["Mountpoint"]
    assert dockerpy.volumes.create(name="data").id == v.id  # create is idempotent
    other = dockerpy.volumes.create(name="other")
    assert dockerpy.volumes.get("data").attrs["Labels"] == {"team": "a"}
    assert {x.name for x in dockerpy.volumes.list()} == {"data", "other"}
    assert [x.name for x in dockerpy.volumes.list(filters={"label": "team=a"})] == ["data"]
    assert [x.name for x in dockerpy.volumes.list(filters={"label": "team"})] == ["data"]
    assert [x.name for x in dockerpy.volumes.list(filters={"name": "oth"})] == ["other"]
    anon = dockerpy.volumes.create()
    assert len(anon.name) == 64
    out = dockerpy.containers.run("busybox", ["sh", "-c", "echo kept > /v/f; cat /v/f"],
                                  volumes={"data": {"bind": "/v", "mode": "rw"}}, name="user")
    assert out == b"kept\n"
    assert dockerpy.containers.run("busybox", "cat /v/f", volumes=["data:/v:ro"],
                                   remove=True) == b"kept\n"
    assert [x.name for x in dockerpy.volumes.list(filters={"dangling": True})] == [
        *sorted([anon.name, "other"])]
    with pytest.raises(APIError) as err:
        v.remove()
    assert err.value.status_code == 409 and "in use" in str(err.value.explanation)
    with pytest.raises(APIError) as err:  # (docker-py 7 does not send its force flag)
        v.remove(force=True)
    assert err.value.status_code == 409
    dockerpy.containers.get("user").remove()
    # API >= 1.42 prunes anonymous volumes only, unless all=true
    pruned = dockerpy.volumes.prune()
    assert pruned["VolumesDeleted"] == [anon.name]
    assert pruned["SpaceReclaimed"] >= 0
    pruned = dockerpy.volumes.prune(filters={"all": "true", "label": "team=a"})
    assert pruned["VolumesDeleted"] == ["data"]
    assert pruned["SpaceReclaimed"] > 0
    other.remove(force=True)
    with pytest.raises(NotFound):
        dockerpy.volumes.get("other")
    with pytest.raises(NotFound):
        dockerpy.api.remove_volume("other")
    assert dockerpy.volumes.list() == []
    # a client of Docker 20.10's API (1.41) prunes every unused volume, named ones too
    dockerpy.volumes.create(name="named")
    old = docker.DockerClient(base_url="unix://" + str(daemon.socket), version="1.41")
    assert old.volumes.prune()["VolumesDeleted"] == ["named"]
    old.close()


def test_networks(dockerpy: docker.DockerClient) -> None:
    start = datetime.datetime.now(datetime.UTC)
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet="10.243.7.0/24", gateway="10.243.7.1")])
    net = dockerpy.networks.create("app", driver="bridge", ipam=ipam, labels={"env": "test"})
    assert net.name == "app" and len(net.id) == 64
    assert net.attrs["Driver"] == "bridge" and net.attrs["Labels"] == {"env": "test"}
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.243.7.0/24"
    assert net.attrs["IPAM"]["Config"][0]["Gateway"] == "10.243.7.1"
    assert net.attrs["Internal"] is False
    internal = dockerpy.networks.create("back", driver="bridge", internal=True)
    assert dockerpy.networks.get("back").attrs["Internal"] is True
    with pytest.raises(APIError) as err:
        dockerpy.networks.create("app")
    assert err.value.status_code == 409
    names = {n.name for n in dockerpy.networks.list()}
    assert {"app", "back", "bridge", "host", "none"} <= names
    assert [n.name for n in dockerpy.networks.list(filters={"label": "env=test"})] == ["app"]
    assert [n.name for n in dockerpy.networks.list(names=["back"])] == ["back"]
    assert [n.id for n in dockerpy.networks.list(ids=[net.id])] == [net.id]
    assert {n.name for n in dockerpy.networks.list(filters={"type": "custom"})} == {
        "app", "back"}

    db = dockerpy.containers.run("busybox", ["sleep", "300"], detach=True, name="db",
                                 network="app")
    out = dockerpy.containers.run("busybox", ["ping", "-c1", "-W5", "db"], network="app",
                                  remove=True)
    assert b"1 packets received" in out
    net.reload()
    assert list(net.attrs["Containers"]) == [db.id]
    assert [c.name for c in net.containers] == ["db"]
    db.reload()
    settings = db.attrs["NetworkSettings"]["Networks"]["app"]
    assert settings["IPAddress"].startswith("10.243.7.")
    assert settings["Gateway"] == "10.243.7.1" and settings["NetworkID"] == net.id
    (listed,) = dockerpy.api.containers(filters={"name": "db"})  # the list has them too
    assert listed["NetworkSettings"]["Networks"]["app"]["IPAddress"] == settings["IPAddress"]

    internal.connect(db, aliases=["store"])
    db.reload()
    assert set(db.attrs["NetworkSettings"]["Networks"]) == {"app", "back"}
    assert "store" in db.attrs["NetworkSettings"]["Networks"]["back"]["Aliases"]
    out = dockerpy.containers.run("busybox", ["nslookup", "store"], network="back",
                                  remove=True)
    assert db.attrs["NetworkSettings"]["Networks"]["back"]["IPAddress"].encode() in out
    with pytest.raises(APIError) as err:  # in use
        internal.remove()
    assert err.value.status_code in (403, 409)
    internal.disconnect(db)
    db.reload()
    assert set(db.attrs["NetworkSettings"]["Networks"]) == {"app"}
    # off its last network it keeps a namespace with lo; connected again, it is back
    net.disconnect(db)
    assert b"eth" not in db.exec_run("ip -4 -o addr").output
    net.connect(db, aliases=["db2"])
    assert b"10.243.7." in db.exec_run("ip -4 -o addr").output
    out = dockerpy.containers.run("busybox", ["ping", "-c1", "-W5", "db2"], network="app",
                                  remove=True)
    assert b"1 packets received" in out
    db.reload()
    assert set(db.attrs["NetworkSettings"]["Networks"]) == {"app"}
    sandbox = Path(db.attrs["NetworkSettings"]["SandboxKey"])
    assert sandbox.exists()
    net.disconnect(db)
    db.stop(timeout=0)
    assert not sandbox.exists()  # the stop removes it, also with no network left
    net.connect(db)  # recorded for its next start
    db.start()
    assert b"10.243.7." in db.exec_run("ip -4 -o addr").output
    with pytest.raises(NotFound):
        dockerpy.networks.get("nosuchnet")

    # a container created on a network, connected to another before it starts
    later = dockerpy.containers.create("busybox", ["sleep", "300"], name="later",
                                       network="app")
    internal.connect(later, aliases=["lb"])
    later.start()
    out = dockerpy.containers.run("busybox", ["nslookup", "lb"], network="back", remove=True)
    assert b"Address" in out and b"can't find" not in out
    later.remove(force=True)
    db.remove(force=True)

    assert dockerpy.networks.prune(filters={"label": "env=test"}) == {
        "NetworksDeleted": ["app"]}
    assert dockerpy.networks.prune()["NetworksDeleted"] == ["back"]
    assert {n.name for n in dockerpy.networks.list()} == {"bridge", "host", "none"}
    with pytest.raises(APIError) as err:
        dockerpy.networks.get("bridge").remove()
    assert err.value.status_code == 403

    # what happened to "back", as Docker reports it: created, containers connected and
    # disconnected (db by hand, the short-lived ones at their exit), destroyed
    end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    events = list(dockerpy.events(decode=True, since=start, until=end,
                                  filters={"type": "network", "network": "back"}))
    actions = [e["Action"] for e in events]
    assert actions[0] == "create" and actions[-1] == "destroy"
    assert actions.count("connect") == actions.count("disconnect") >= 3
    first = events[actions.index("connect")]
    assert first["Actor"]["ID"] == internal.id
    assert first["Actor"]["Attributes"] == {"container": db.id, "name": "back",
                                            "type": "bridge"}
