"""What the inventory reads from layers: dpkg status (and status.d), Python metadata,
node_modules and package-lock, Go build info; whiteouts; the layer each package came from;
and the SBOMs written from it, validated by spdx-tools and cyclonedx-python-lib."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.store.images import ImageStore
from portside.trust.sbom import formats, gobuildinfo
from portside.trust.sbom.inventory import collect

sys.path.insert(0, str(Path(__file__).parents[2]))
from helpers.imagefactory import add_image  # noqa: E402

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def stanza(name: str, version: str, source: str = "") -> str:
    src = f"Source: {source}\n" if source else ""
    return (f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n{src}"
            f"Version: {version}\n\n")


def whiteout(path: str) -> tarfile.TarInfo:
    folder, _, name = path.rpartition("/")
    info = tarfile.TarInfo(f"{folder}/.wh.{name}")
    info.size = 0
    return info


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def go_binary(version: str, modinfo: str) -> bytes:
    """An ELF-looking file carrying Go 1.18+ inline build info where the linker puts it."""
    sentinel_start, sentinel_end = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6", \
        b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
    info = sentinel_start + modinfo.encode() + sentinel_end
    header = gobuildinfo.MAGIC + bytes([8, 2]) + bytes(16)
    body = header + uvarint(len(version)) + version.encode() + uvarint(len(info)) + info
    return b"\x7fELF" + bytes(60) + body + bytes(100)


def layer_tar(files: dict[str, bytes], executables: dict[str, bytes]) -> bytes:
    """Raw tar bytes of a layer whose `executables` have mode 0755."""
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in {**files, **executables}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name in executables else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_packages_and_the_layers_they_came_from(store: ImageStore) -> None:
    lock = {"name": "app", "lockfileVersion": 3, "packages": {
        "": {"name": "app"}, "node_modules/lodash": {"version": "4.17.20"},
        "node_modules/@types/node": {"version": "20.1.0"}}}
    base = {
        "etc/os-release": OS_RELEASE,
        "var/lib/dpkg/status": (stanza("libc6", "2.36-9+deb12u2", "glibc")
                                + stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")).encode(),
        "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA":
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO":
            b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n",
    }
    app = {
        # libc6 upgraded here, zlib1g untouched: it still comes from the base layer
        "var/lib/dpkg/status": (stanza("libc6", "2.36-9+deb12u14", "glibc")
                                + stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")
                                + stanza("bash", "5.2.15-2+b13", "bash (5.2.15-2)")).encode(),
        "app/package-lock.json": json.dumps(lock).encode(),
        "app/node_modules/lodash/package.json":
            json.dumps({"name": "lodash", "version": "4.17.20", "license": "MIT"}).encode(),
        "var/lib/dpkg/status.d/tzdata": stanza("tzdata", "2024a-0+deb12u1").encode(),
    }
    tool = go_binary("go1.21.5", "path\texample.com/tool\nmod\texample.com/tool\tv1.2.0\th1:x\n"
                                 "dep\tgolang.org/x/net\tv0.17.0\th1:y\n")
    gone = whiteout("usr/lib/python3/dist-packages/six-1.16.0.egg-info")
    built = add_image(store, [base, layer_tar(app, {"usr/local/bin/tool": tool}),
                              {gone.name: gone}])
    inventory = collect(store, built.image)
    layers = [d.digest for d in store.manifest(built.image).layers]
    got = {(p.ecosystem, p.name): p for p in inventory.packages}
    assert inventory.distro.id == "debian" and inventory.distro.version_id == "12"
    assert got[("Debian", "libc6")].version == "2.36-9+deb12u14"
    assert got[("Debian", "libc6")].layer == layers[1]
    assert got[("Debian", "zlib1g")].layer == layers[0]
    assert got[("Debian", "bash")].source_version == "5.2.15-2"
    assert got[("Debian", "libc6")].purl == \
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"
    assert got[("Debian", "tzdata")].path == "var/lib/dpkg/status.d/tzdata"
    assert got[("PyPI", "requests")].layer == layers[0]
    assert ("PyPI", "six") not in got  # deleted by the third layer's whiteout
    assert got[("npm", "lodash")].version == "4.17.20"
    assert got[("npm", "@types/node")].purl == "pkg:npm/%40types/node@20.1.0"
    assert got[("npm", "@types/node")].path == "app/package-lock.json"
    assert got[("Go", "stdlib")].version == "1.21.5"
    assert got[("Go", "golang.org/x/net")].version == "0.17.0"
    assert got[("Go", "example.com/tool")].layer == layers[1]


def test_go_build_info(store: ImageStore) -> None:
    info = gobuildinfo.parse(go_binary(
        "go1.21.5", "path\texample.com/tool\nmod\texample.com/tool\tv1.2.0\th1:x\n"
                    "dep\tgolang.org/x/net\tv0.17.0\th1:y\n"
                    "dep\tgithub.com/a/b\tv1.0.0\th1:z\n=>\tgithub.com/c/b\tv1.0.1\th1:w\n"))
    assert info is not None
    assert info.go_version == "go1.21.5"
    assert info.main == gobuildinfo.GoModule("example.com/tool", "v1.2.0")
    assert [d.path for d in info.deps] == ["golang.org/x/net", "github.com/c/b"]
    assert gobuildinfo.parse(b"\x7fELF" + bytes(100)) is None


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_go_build_info_never_crashes(tail: bytes) -> None:
    gobuildinfo.parse(b"\x7fELF" + bytes(12) + gobuildinfo.MAGIC + tail)


def test_sboms_validate_with_their_own_libraries(store: ImageStore) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    built = add_image(store, [{"etc/os-release": OS_RELEASE, "var/lib/dpkg/status":
                               stanza("libc6", "2.36-9+deb12u14", "glibc").encode()}])
    inventory = collect(store, built.image)
    spdx = formats.render(inventory, "spdx-json", "shop/web:1")
    path = store.root / "sbom.spdx.json"
    path.write_text(spdx)
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert {p.name for p in document.packages} == {"shop/web:1", "libc6"}
    cdx = formats.render(inventory, "cyclonedx-json", "shop/web:1")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx) is None
    (component,) = json.loads(cdx)["components"]
    assert {"name": "portside:layer:digest", "value": inventory.layers[0]} in \
        component["properties"]
