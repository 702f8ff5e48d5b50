"""Base images made from the distribution, without any registry: busybox and Debian.

`busybox` takes Debian's statically linked `/bin/busybox` (package busybox-static), adds
its applets as hardlinks and a minimal /etc; it needs no root and is reproducible (every
time stamp is the binary's, or SOURCE_DATE_EPOCH). `debian` runs debootstrap into a
private temporary directory, inside its own mount namespace so the /proc and /sys it
mounts can never outlive it, then stores the tree as one layer. Debian images are cached:
the cache key (suite, variant, packages, mirror, architecture) is an annotation of the
image, and an identical request reuses the stored image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from portside.errors import PortsideError
from portside.numbers import is_digits
from portside.store import imagebuilder
from portside.store.images import Image, ImageStore
from portside.store.layers import Entry, write_entries, write_layer

BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ANNOTATION = "io.portside.bootstrap"
CACHE_KEY = f"{ANNOTATION}.cache-key"

Progress = Callable[[str], None]


class BootstrapError(PortsideError):
    """A base image could not be made (missing tool or package, bad suite, mirror down)."""


@dataclass(frozen=True)
class Result:
    image: Image
    cached: bool = False


def _quiet(_: str) -> None:
    pass


def _epoch(default: float) -> int:
    """SOURCE_DATE_EPOCH when set (reproducible-builds.org), else `default`."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if is_digits(value) else int(default)


def _package_version(package: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


# -- busybox --


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP)."""
    import struct

    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
        if wide:
            phoff, = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        else:
            phoff, = struct.unpack_from(order + "I", head, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = (struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum))
    return 3 not in types  # PT_INTERP


def _busybox_entries(binary: Path, epoch: int) -> tuple[list[Entry], str]:
    try:
        # argv[0] "busybox" whatever the file's name: busybox picks the applet by argv[0].
        def run(*args: str) -> str:
            return subprocess.run(
                ["busybox", *args], executable=binary, capture_output=True, text=True,
                timeout=30,
            ).stdout

        listing, banner = run("--list-full").split(), run()
    except (OSError, subprocess.SubprocessError) as exc:
        raise BootstrapError(f"cannot run {binary}: {exc}") from None
    version = m.group(1) if (m := re.search(r"BusyBox v(\S+)", banner)) else ""
    if not version or not listing:
        raise BootstrapError(f"{binary} is not a busybox binary (no BusyBox banner or applets)")

    def node(name: str, kind: bytes, mode: int, link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.linkname = kind, mode, epoch, link
        return info

    dirs = ["bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp",
            "usr", "usr/bin", "usr/sbin", "var", "var/spool", "var/tmp"]
    entries: list[Entry] = [(node(d, tarfile.DIRTYPE, 0o755), None) for d in dirs]
    for special, mode in (("root", 0o700), ("tmp", 0o1777), ("var/tmp", 0o1777)):
        entries[dirs.index(special)][0].mode = mode
    etc: dict[str, bytes] = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
        "etc/shadow": b"root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n",
    }
    for name, data in etc.items():
        entries.append((node(name, tarfile.REGTYPE, 0o640 if "shadow" in name else 0o644), data))
    entries.append((node("bin/busybox", tarfile.REGTYPE, 0o755), binary))
    applets = sorted(
        {a for a in listing if "/" in a and a.split("/")[0] in ("bin", "sbin", "usr")}
        - {"bin/busybox"}
    )
    # Directories first, then files, then the links: a hardlink must follow its target.
    entries += [(node(a, tarfile.LNKTYPE, 0o755, "bin/busybox"), None) for a in applets]
    return entries, version


def bootstrap_busybox(
    store: ImageStore,
    tags: Sequence[str] = ("busybox:latest",),
    binary: Path = BUSYBOX,
    compression: str = "gzip",
    progress: Progress = _quiet,
) -> Result:
    """A ~1 MB image: static busybox, its applets as hardlinks, root and nobody users."""
    if not binary.is_file() or not _is_static_elf(binary):
        raise BootstrapError(
            f"busybox-static is not installed ({binary} is missing or not static;"
            " apt-get install busybox-static)"
        )
    epoch = _epoch(binary.stat().st_mtime)
    entries, version = _busybox_entries(binary, epoch)
    package = _package_version("busybox-static") if binary == BUSYBOX else ""
    origin = f"Debian's busybox-static {package}" if package else str(binary)
    progress(f"busybox {version} ({len(entries)} entries) from {binary}")
    created = imagebuilder.rfc3339(epoch)
    notes = {
        imagebuilder.DESCRIPTION: f"BusyBox {version} from {origin}",
        "org.opencontainers.image.version": version,
        f"{ANNOTATION}.kind": "busybox",
        f"{ANNOTATION}.source": str(binary),
    }
    if package:
        notes[f"{ANNOTATION}.package"] = f"busybox-static={package}"
    history = {
        "created_by": "portside image bootstrap busybox",
        "comment": notes[imagebuilder.DESCRIPTION],
    }
    with store.importing():
        layer = write_entries(store.content, entries, compression)
        image = imagebuilder.new_image(
            store,
            [layer],
            {"Env": [PATH_ENV], "Cmd": ["sh"], "Labels": dict(notes)},
            [history],
            notes,
            tags,
            created,
        )
    progress(f"stored {image.short_id} ({layer.size} bytes)")
    return Result(image)


# -- debian --


def apt_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses (not the security one), or deb.debian.org."""
    candidates: list[str] = []
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    candidates.append(words[1])
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                fields = {}
                for line in stanza.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith((" ", "#")):
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and fields.get(
                    "enabled", "yes"
                ).lower() != "no":
                    candidates += fields.get("uris", "").split()
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below `path`, then delete it; never crosses a mount."""
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    if left := _mounts_under(path):
        raise BootstrapError(f"cannot remove {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _workdir(store: ImageStore) -> Iterator[Path]:
    base = store.root / "tmp"
    base.mkdir(mode=0o700, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bootstrap-", dir=base))
    try:
        yield work
    finally:
        remove_tree(work)


def _reason(lines: Sequence[str], target: Path) -> str:
    errors = [line[3:].strip() for line in lines if line.startswith("E: ")]
    reason = errors[-1] if errors else next((x for x in reversed(lines) if x.strip()), "")
    log = target / "debootstrap" / "debootstrap.log"
    if "debootstrap.log" in reason and log.is_file():
        tail = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
        reason = tail[-1] if tail else reason
    return reason.replace(str(target), "<target>") or "unknown error"


def _run_debootstrap(args: list[str], target: Path, progress: Progress) -> None:
    # A private mount namespace: debootstrap's mounts of /proc, /sys die with it.
    command = ["unshare", "--mount", "--propagation", "private", "debootstrap", *args]
    tail: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", stdin=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = [*tail[-40:], line]
            if line.startswith(("I: ", "E: ", "W: ")):
                progress(line)
    if proc.returncode != 0:
        raise BootstrapError(f"debootstrap {args[-3]} failed: {_reason(tail, target)}")


def _tidy_rootfs(root: Path) -> None:
    """Drop what is not the image's: device nodes, apt's downloads, the host's names."""
    for sub in ("dev", "proc", "sys", "run", "tmp", "var/lib/apt/lists", "var/cache/apt"):
        d = root / sub
        if d.is_dir() and not d.is_symlink():
            for child in d.iterdir():
                if child.name in ("lock", "partial", "archives"):
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    for name in ("etc/hostname", "etc/resolv.conf"):  # the runtime provides these
        with contextlib.suppress(FileNotFoundError):
            if not (root / name).is_symlink():
                (root / name).write_text("")


def find_cached(store: ImageStore, key: str) -> Image | None:
    for image in store.list():
        with contextlib.suppress(Exception):
            if store.manifest(image).annotations.get(CACHE_KEY) == key:
                return image
    return None


@dataclass(frozen=True)
class DebianRequest:
    mirror: str
    packages: list[str]
    arch: str
    key: str  # the cache key: the image annotated (and labelled) CACHE_KEY=key is this one


def debian_request(
    suite: str, variant: str, include: Sequence[str] = (), mirror: str | None = None
) -> DebianRequest:
    """A Debian image request checked (suite, variant, mirror; debootstrap and root
    present), with its cache key."""
    if not re.fullmatch(r"[a-z][a-z0-9.-]*", suite):
        raise BootstrapError(f"invalid suite name {suite!r}")
    if shutil.which("debootstrap") is None:
        raise BootstrapError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise BootstrapError("debootstrap needs root: run `portside image bootstrap debian` as root")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", variant):
        raise BootstrapError(f"invalid debootstrap variant {variant!r}")
    mirror = (mirror or apt_mirror()).rstrip("/")
    if not re.match(r"(https?|file)://\S+$", mirror):
        raise BootstrapError(f"invalid mirror {mirror!r}: want an http(s):// or file:// URL")
    packages = sorted({p.strip() for item in include for p in item.split(",") if p.strip()})
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    recipe = {"suite": suite, "variant": variant, "include": packages, "mirror": mirror,
              "arch": arch}
    key = "sha256:" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return DebianRequest(mirror, packages, arch, key)


def bootstrap_debian(
    store: ImageStore,
    suite: str = "bookworm",
    variant: str = "minbase",
    include: Sequence[str] = (),
    mirror: str | None = None,
    tags: Sequence[str] | None = None,
    compression: str = "gzip",
    use_cache: bool = True,
    progress: Progress = _quiet,
) -> Result:
    """A Debian image from debootstrap (needs root and the debootstrap package)."""
    request = debian_request(suite, variant, include, mirror)
    mirror, packages, arch, key = request.mirror, request.packages, request.arch, request.key
    tags = list(tags) if tags else [f"debian:{suite}"]
    if use_cache and (cached := find_cached(store, key)):
        progress(f"using cached image {cached.short_id} for {suite} ({variant})")
        for tag in tags:
            store.tag(cached.manifest_digest, tag)
        return Result(store.get_by_manifest(cached.manifest_digest), cached=True)

    args = [f"--variant={variant}", f"--arch={arch}"]
    if packages:
        args.append("--include=" + ",".join(packages))
    tool = _package_version("debootstrap")
    with _workdir(store) as work:
        target = work / "rootfs"
        _run_debootstrap([*args, suite, str(target), mirror], target, progress)
        if left := _mounts_under(work):
            raise BootstrapError(f"debootstrap left mounts under {work}: {', '.join(left)}")
        _tidy_rootfs(target)
        progress("writing the layer")
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        description = (
            f"Debian {suite} ({variant}) made by debootstrap {tool} from {mirror}"
            + (f" with {', '.join(packages)}" if packages else "")
        )
        notes = {
            imagebuilder.DESCRIPTION: description,
            f"{ANNOTATION}.kind": "debian",
            f"{ANNOTATION}.suite": suite,
            f"{ANNOTATION}.variant": variant,
            f"{ANNOTATION}.include": ",".join(packages),
            f"{ANNOTATION}.mirror": mirror,
            f"{ANNOTATION}.tool": f"debootstrap={tool}",
            CACHE_KEY: key,
        }
        with store.importing():
            layer = write_layer(
                store.content, target, compression,
                epoch=int(epoch) if epoch and is_digits(epoch) else None, whiteouts="none",
            )
            created = (
                imagebuilder.rfc3339(int(epoch)) if epoch and is_digits(epoch) else None
            )
            command = f"debootstrap {' '.join(args)} {suite} / {mirror}"
            image = imagebuilder.new_image(
                store,
                [layer],
                {"Env": [PATH_ENV], "Cmd": ["bash"], "Labels": dict(notes)},
                [{"created_by": command, "comment": description}],
                notes,
                tags,
                created,
            )
    progress(f"stored {image.short_id} ({layer.size} bytes)")
    return Result(image)
