"""An inventory as SPDX 2.3 JSON (spdx-tools) or CycloneDX 1.6 JSON (cyclonedx-python-lib).

Both libraries validate what they write, so a document that leaves here is one their own
readers accept. The layer a package came from travels as an SPDX package comment and
`sourceInfo`, and as the CycloneDX property `portside:layer:digest` (syft
uses the same idea with `syft:location:*:layerID`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from portside import __version__
from portside.errors import InvalidArgument
from portside.trust.sbom.inventory import Inventory, Package

FORMATS = ("spdx-json", "cyclonedx-json")
TOOL = f"portside-{__version__}"


class BadFormat(InvalidArgument):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown SBOM format {name!r}: want one of {', '.join(FORMATS)}")


def render(inventory: Inventory, name: str, image_name: str) -> str:
    """The SBOM of `inventory` in format `name`."""
    writers: dict[str, Callable[[Inventory, str], str]] = {
        "spdx-json": spdx_json, "cyclonedx-json": cyclonedx_json,
    }
    if name not in writers:
        raise BadFormat(name)
    return writers[name](inventory, image_name)


def _spdx_id(index: int, package: Package) -> str:
    return f"SPDXRef-Package-{re.sub(r'[^A-Za-z0-9.-]', '-', package.name)}-{index}"


def spdx_json(inventory: Inventory, image_name: str) -> str:
    import io

    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        PackagePurpose,
    )
    from spdx_tools.spdx.model.package import Package as SpdxPackage
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=image_name,
        document_namespace=f"https://portside.dev/spdx/{inventory.image_digest}/{uuid.uuid4()}",
        creators=[Actor(ActorType.TOOL, TOOL)],
        created=datetime.now(UTC).replace(microsecond=0),
    )
    root = SpdxPackage(
        "SPDXRef-Image", image_name, SpdxNoAssertion(), version=inventory.image_digest,
        files_analyzed=False, primary_package_purpose=PackagePurpose.CONTAINER,
        external_references=[ExternalPackageRef(
            ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
            f"pkg:oci/{image_name.rpartition('/')[2].partition(':')[0]}@"
            f"{inventory.image_digest.replace(':', '%3A')}")],
    )
    packages, relationships = [root], [
        Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image")]
    for index, package in enumerate(inventory.packages):
        spdx_id = _spdx_id(index, package)
        packages.append(SpdxPackage(
            spdx_id, package.name, SpdxNoAssertion(), version=package.version,
            files_analyzed=False,
            source_info=f"from layer {package.layer}, recorded in /{package.path}",
            comment=f"layer {package.layer}",
            external_references=[ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", package.purl)],
        ))
        relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, spdx_id))
    out = io.StringIO()
    write_document_to_stream(Document(info, packages=packages, relationships=relationships), out)
    return out.getvalue()


def cyclonedx_json(inventory: Inventory, image_name: str) -> str:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.component = Component(
        name=image_name, version=inventory.image_digest, type=ComponentType.CONTAINER,
        bom_ref="image",
    )
    bom.metadata.properties.add(Property(name="portside:tool", value=TOOL))
    for index, package in enumerate(inventory.packages):
        component = Component(
            name=package.name, version=package.version, type=ComponentType.LIBRARY,
            purl=PackageURL.from_string(package.purl), bom_ref=f"{package.purl}#{index}",
            properties=[
                Property(name="portside:layer:digest", value=package.layer),
                Property(name="portside:location", value="/" + package.path),
                *(Property(name=f"portside:{k}", value=v) for k, v in package.notes),
            ],
        )
        bom.components.add(component)
        bom.register_dependency(bom.metadata.component, [component])
    return JsonV1Dot6(bom).output_as_string(indent=2)
