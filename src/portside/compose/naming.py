"""Names and labels of what a project creates, as Docker Compose names and labels them.

Containers are `<project>-<service>-<n>` (one-off `run` containers
`<project>-<service>-run-<id>`), networks `<project>_<name>`, volumes `<project>_<name>`,
images built for a service without `image:` `<project>-<service>`. Every object carries
`com.docker.compose.*` labels so that `ps --filter label=...` and other tools find them.
"""

from __future__ import annotations

import json

from portside.compose.model import Project, Service

VERSION = "2.29.0"  # the Docker Compose version whose labels we reproduce
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_HASH = "com.docker.compose.config-hash"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_VERSION = "com.docker.compose.version"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"
REPLACE = "com.docker.compose.replace"


def image_name(project: Project, service: Service) -> str:
    return service.image or f"{project.name}-{service.name}"


def container_name(project: Project, service: Service, number: int) -> str:
    return service.container_name or f"{project.name}-{service.name}-{number}"


def depends_on_label(service: Service) -> str:
    """`db:service_healthy:false,cache:service_started:true` (condition, restart)."""
    return ",".join(f"{name}:{dep.condition}:{str(dep.restart).lower()}"
                    for name, dep in service.depends_on.items())


def container_labels(project: Project, service: Service, number: int, oneoff: bool = False
                     ) -> dict[str, str]:
    return {
        **service.labels,
        PROJECT: project.name,
        SERVICE: service.name,
        NUMBER: str(number),
        ONEOFF: "True" if oneoff else "False",
        CONFIG_HASH: service.config_hash(),
        WORKING_DIR: project.working_dir,
        CONFIG_FILES: ",".join(project.config_files),
        COMPOSE_VERSION: VERSION,
        DEPENDS_ON: depends_on_label(service),
        IMAGE: "",
    }


def resource_labels(project: Project, kind: str, key: str, extra: dict[str, str]
                    ) -> dict[str, str]:
    """Labels of a network (`kind` NETWORK) or volume (VOLUME) the project creates."""
    return {**extra, PROJECT: project.name, kind: key, COMPOSE_VERSION: VERSION}


def label_filter(project: Project, *more: str) -> str:
    """A Docker API `filters` value selecting the project's objects."""
    return json.dumps({"label": [f"{PROJECT}={project.name}", *more]})
