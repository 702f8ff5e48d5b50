"""Fixtures of the interop tests: a docker-py client on the test's own daemon."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from helpers.daemon import PortsideDaemon


@pytest.fixture
def dockerpy(daemon: PortsideDaemon) -> Iterator[docker.DockerClient]:
    """docker-py's `DockerClient` on the daemon's socket, with the API version negotiated
    as docker-py does by default (it asks `/version`)."""
    client = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=120)
    try:
        yield client
    finally:
        client.close()
