"""Parsers of the Compose spec's short syntaxes: ports, volumes, durations, sizes, hosts.

Each raises ValueError with a message that quotes the bad value; callers add the file
and key path. Results are the spec's long syntax (plain dicts), so that merge, validation
and normalisation see one shape.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from portside.numbers import is_digits

PROTOCOLS = ("tcp", "udp", "sctp")
VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MODES = {"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
          "shared", "slave", "private", "rshared", "rslave", "rprivate"}
_PROPAGATION = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}


def _port_range(text: str, spec: str) -> tuple[int, int]:
    lo, dash, hi = text.partition("-")
    if not is_digits(lo) or (dash and not is_digits(hi)):
        raise ValueError(f"invalid port \"{spec}\"")
    a, b = int(lo), int(hi) if dash else int(lo)
    if not (0 < a <= 65535 and 0 < b <= 65535) or b < a:
        raise ValueError(f"invalid port \"{spec}\": ports are 1-65535")
    return a, b


def check_ip(text: str, what: str, spec: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"invalid {what} \"{spec}\": \"{text}\" is not an IP address") from None


def _port_ip(addr: str, spec: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        raise ValueError(f"invalid port \"{spec}\"") from None


def parse_port(spec: str | int) -> list[dict[str, Any]]:
    """`[[IP:]HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]` -> one long-syntax dict per port."""
    text = str(spec)
    body, slash, proto = text.partition("/")
    if slash and proto not in PROTOCOLS:
        raise ValueError(f"invalid port \"{text}\": protocol must be one of {', '.join(PROTOCOLS)}")
    protocol = proto or "tcp"
    host_ip = None
    if body.startswith("["):  # [IPv6]:published:target
        addr, close, rest = body[1:].partition("]")
        if not close or not rest.startswith(":"):
            raise ValueError(f"invalid port \"{text}\"")
        host_ip = _port_ip(addr, text)
        parts = rest[1:].split(":")
        if len(parts) != 2:
            raise ValueError(f"invalid port \"{text}\"")
        published, target = parts
    else:
        parts = body.split(":")
        if len(parts) == 1:
            published, target = "", parts[0]
        elif len(parts) == 2:
            published, target = parts
        elif len(parts) == 3:
            host_ip = _port_ip(parts[0], text) if parts[0] else None
            published, target = parts[1], parts[2]
        else:
            raise ValueError(f"invalid port \"{text}\"")
    t0, t1 = _port_range(target, text)
    ports = []
    if published:
        p0, p1 = _port_range(published, text)
        if t1 > t0 and (p1 - p0) != (t1 - t0):
            raise ValueError(f"invalid port \"{text}\": the ranges differ in length")
    for offset, t in enumerate(range(t0, t1 + 1)):
        if not published:
            pub = None
        elif t1 > t0:
            pub = str(p0 + offset)
        else:
            pub = published
        ports.append({"target": t, "published": pub, "host_ip": host_ip,
                      "protocol": protocol, "mode": "ingress"})
    return ports


def check_published(value: str | int) -> str:
    text = str(value)
    _port_range(text, text)
    return text


def is_bind_source(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def parse_volume(spec: str) -> dict[str, Any]:
    """`[SOURCE:]TARGET[:MODE]` -> the long syntax (type bind or volume)."""
    parts = spec.split(":")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"invalid volume \"{spec}\"")
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        source, target = parts
    else:
        source, target, mode = parts
    if not target.startswith("/"):
        raise ValueError(f"invalid volume \"{spec}\": the target must be an absolute path")
    long: dict[str, Any] = {"type": "volume", "target": target}
    if source:
        if is_bind_source(source):
            long["type"] = "bind"
        elif not VOLUME_NAME.fullmatch(source):
            raise ValueError(f"invalid volume \"{spec}\": \"{source}\" is not a volume name or a"
                             " path (paths start with /, ./ or ~)")
        long["source"] = source
    for m in filter(None, mode.split(",")):
        if m not in _MODES:
            raise ValueError(f"invalid volume \"{spec}\": unknown mode \"{m}\"")
        if m == "ro":
            long["read_only"] = True
        elif m in _PROPAGATION:
            long.setdefault("bind", {})["propagation"] = m
        elif m in ("z", "Z"):
            long.setdefault("bind", {})["selinux"] = m
        elif m == "nocopy":
            long.setdefault("volume", {})["nocopy"] = True
    if long["type"] == "bind":
        long.setdefault("bind", {}).setdefault("create_host_path", True)
    return long


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float) -> float:
    """A Go duration (`1m30s`, `500ms`) or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration \"{text}\"")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError(f"invalid duration \"{text}\"")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> a Go duration string, as `compose config` prints them (`1m30s`)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}us"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = f"{int(h)}h" if h else ""
    out += f"{int(m)}m" if m or h else ""
    return out + f"{s:g}s"


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)", re.IGNORECASE)


def parse_bytes(value: str | int) -> int:
    """`512m`, `1g`, `100kb`, `4096` -> bytes (binary units, as Docker reads them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"invalid size \"{value}\"")
    power = " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * (1024 ** power))


def parse_extra_host(text: str) -> tuple[str, str]:
    """`host:ip` or `host=ip` -> (host, ip)."""
    sep = "=" if "=" in text else ":"
    host, found, ip = text.partition(sep)
    ip = ip.strip("[]")
    if not found or not host:
        raise ValueError(f"invalid extra host \"{text}\": expected HOST:IP")
    if ip != "host-gateway":
        check_ip(ip, "extra host", text)
    return host, ip
