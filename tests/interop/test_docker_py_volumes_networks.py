"""docker-py (PyPI) against portside's daemon: volumes and networks, as a docker-py user
creates, lists, connects, prunes and removes them on one host."""

from __future__ import annotations

import docker
import pytest
from docker.errors import APIError, NotFound

pytestmark = pytest.mark.interop


def test_volumes(dockerpy: docker.DockerClient) -> None:
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
