"""Lint an image: every layer is read, not only the final filesystem, because a secret
added in one layer and deleted in the next is still in the image for anyone who pulls it.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections import defaultdict

from portside.store.images import Image, ImageStore
from portside.trust.lint.rules import Finding
from portside.trust.sbom.inventory import read_layer

_MAX_SCANNED = 1024 * 1024  # secrets live in small text files; binaries are not read
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
# kind -> (a substring every match has: a cheap test first, the pattern)
_TOKENS = {
    "AWS access key": ((b"AKIA", b"ASIA"), re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    "GitHub token": ((b"gh",), re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36}\b")),
    "Slack token": ((b"xox",), re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    "GitLab token": ((b"glpat-",), re.compile(rb"\bglpat-[A-Za-z0-9_-]{20}\b")),
}
_CACHES = ("var/cache/apt/archives/", "var/lib/apt/lists/", "root/.cache/pip/",
           "root/.npm/_cacache/", "var/cache/apk/", "root/.cache/go-build/")
_BUILD_TOOLS = re.compile(r"^usr/(?:local/)?bin/(?:gcc|g\+\+|cc|c\+\+|clang|make|ld)(?:-[\d.]+)?$")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n}B"


def _host_specific(text: str) -> list[str]:
    found = []
    for literal in _IPV4.findall(text):
        try:
            address = ipaddress.IPv4Address(literal)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified):
            found.append(literal)
    return found


def lint_image(store: ImageStore, image: Image, max_layers: int = 20,
               expect_ports: tuple[str, ...] | None = None) -> list[Finding]:
    manifest = store.manifest(image)
    config = store.config(image).config
    findings: list[Finding] = []
    layers = [d.digest for d in manifest.layers]
    for index, digest in enumerate(layers, 1):
        where = f"layer {index} ({digest[:19]})"
        cache_bytes: dict[str, int] = defaultdict(int)
        tools: list[tuple[str, int]] = []
        with read_layer(store, digest) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                path = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
                base = posixpath.basename(path)
                if base.startswith(".wh."):
                    continue
                if cache := next((c for c in _CACHES if path.startswith(c)), None):
                    if base != "lock":
                        cache_bytes[cache] += member.size
                    continue
                if _BUILD_TOOLS.match(path):
                    tools.append((path, member.size))
                if base == ".env" or base.endswith(".env"):
                    findings.append(Finding("PS101", where, f"/{path}"))
                if member.size > _MAX_SCANNED:
                    continue
                f = tar.extractfile(member)
                data = f.read() if f else b""
                if data.startswith(b"\x7fELF"):
                    continue  # executables and libraries: not where secrets are left
                if b"PRIVATE KEY" in data and _PRIVATE_KEY.search(data):
                    findings.append(Finding("PS100", where, f"/{path} holds a private key"))
                for kind, (hints, pattern) in _TOKENS.items():
                    if any(h in data for h in hints) and pattern.search(data):
                        findings.append(Finding("PS102", where, f"/{path} holds a {kind}"))
                if path == "etc/hosts" and (ips := _host_specific(data.decode(errors="replace"))):
                    findings.append(Finding("PS303", where, f"/etc/hosts names {', '.join(ips)}"))
        for cache, size in sorted(cache_bytes.items()):
            findings.append(Finding("PS200", where, f"/{cache} left behind: {_human(size)}"))
        if tools:
            names = ", ".join(f"/{p}" for p, _ in tools)
            findings.append(Finding("PS201", where, f"{names}: {_human(sum(s for _, s in tools))}"))
    user = str(config.get("User") or "")
    if user.split(":")[0] in ("", "root", "0"):
        findings.append(Finding("PS300", "config", f"User is {user or 'unset (root)'}"))
    if len(layers) > max_layers:
        findings.append(Finding("PS301", "config", f"{len(layers)} layers (at most {max_layers})"))
    if expect_ports is not None:
        exposed = {p if "/" in p else f"{p}/tcp" for p in (config.get("ExposedPorts") or {})}
        wanted = {p if "/" in p else f"{p}/tcp" for p in expect_ports}
        for port in sorted(wanted - exposed):
            findings.append(Finding("PS302", "config", f"port {port} is not exposed"))
        for port in sorted(exposed - wanted):
            findings.append(Finding("PS302", "config", f"port {port} is exposed, not expected"))
    for entry in config.get("Env") or []:
        if ips := _host_specific(str(entry).partition("=")[2]):
            name = str(entry).partition("=")[0]
            findings.append(Finding("PS303", "config", f"Env {name} names {', '.join(ips)}"))
    return findings
