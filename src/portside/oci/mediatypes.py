"""Media types of OCI image spec v1.1 and Docker image manifest v2 schema 2."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
# Deprecated by image-spec 1.1 but still produced by older tools: read them, never write them.
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# Layer media type -> compression ("" for none).
LAYERS = {
    OCI_LAYER: "",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST: "",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
    DOCKER_LAYER: "",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN_GZIP: "gzip",
}

# The OCI and Docker twins, to convert a manifest from one family to the other.
OCI_TO_DOCKER = {
    OCI_INDEX: DOCKER_MANIFEST_LIST,
    OCI_MANIFEST: DOCKER_MANIFEST,
    OCI_CONFIG: DOCKER_CONFIG,
    OCI_LAYER: DOCKER_LAYER,
    OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
}
DOCKER_TO_OCI = {v: k for k, v in OCI_TO_DOCKER.items()}


def layer_compression(media_type: str) -> str:
    """'' / 'gzip' / 'zstd' for a layer media type; KeyError for anything that is not a layer."""
    return LAYERS[media_type]
