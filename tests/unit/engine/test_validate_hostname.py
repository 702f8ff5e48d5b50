"""`--hostname` with `--network container:<name>` is Docker's conflict, refused at create."""

from __future__ import annotations

import pytest

from portside.engine.validate import check_create
from portside.errors import InvalidArgument


def test_hostname_and_container_network_mode_conflict() -> None:
    with pytest.raises(InvalidArgument,
                       match="^conflicting options: hostname and the network mode$"):
        check_create({"Image": "busybox", "Hostname": "web",
                      "HostConfig": {"NetworkMode": "container:db"}})


@pytest.mark.parametrize("body", [
    {"Image": "busybox", "Hostname": "", "HostConfig": {"NetworkMode": "container:db"}},
    {"Image": "busybox", "HostConfig": {"NetworkMode": "container:db"}},
    {"Image": "busybox", "Hostname": "web", "HostConfig": {"NetworkMode": "host"}},
    {"Image": "busybox", "Hostname": "web", "HostConfig": {"NetworkMode": "mynet"}},
])
def test_other_combinations_are_fine(body: dict[str, object]) -> None:
    check_create(body)
