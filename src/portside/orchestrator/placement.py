"""Placement on this host: constraints and reservations, with Swarm's reasons.

A task that cannot be placed stays pending with the reason as its error, as Swarm's
scheduler says it: "no suitable node (insufficient resources on 1 node)".
"""

from __future__ import annotations

import re
from typing import Any

from portside.errors import InvalidArgument

Doc = dict[str, Any]

CONSTRAINT = re.compile(r"^\s*([\w.\-]+)\s*(==|!=)\s*(.*?)\s*$")


def check_constraints(constraints: list[str]) -> None:
    for c in constraints:
        if not CONSTRAINT.match(c):
            raise InvalidArgument(f"invalid constraint {c!r}: want key==value or key!=value")


def _node_value(node: Doc, key: str) -> str | None:
    if key == "node.role":
        return str(node["Spec"]["Role"])
    if key == "node.id":
        return str(node["ID"])
    if key == "node.hostname":
        return str(node["Description"]["Hostname"])
    if key == "node.platform.os":
        return str(node["Description"]["Platform"]["OS"])
    if key == "node.platform.arch":
        return str(node["Description"]["Platform"]["Architecture"])
    if key.startswith("node.labels."):
        return (node["Spec"].get("Labels") or {}).get(key[len("node.labels."):])
    if key.startswith("engine.labels."):
        return None
    return None


def satisfies(node: Doc, constraints: list[str]) -> bool:
    for c in constraints:
        m = CONSTRAINT.match(c)
        if m is None:
            return False
        key, op, want = m.groups()
        have = _node_value(node, key)
        if (op == "==") != (have is not None and have.lower() == want.lower()):
            return False
    return True


def unplaceable(task: Doc, node: Doc, reserved: tuple[int, int]) -> str:
    """Why the node cannot take the task ("" when it can)."""
    spec = task["Spec"]
    if node["Spec"].get("Availability", "active") != "active":
        return "no suitable node (1 node not available for new tasks)"
    constraints = list((spec.get("Placement") or {}).get("Constraints") or [])
    if not satisfies(node, constraints):
        return "no suitable node (scheduling constraints not satisfied on 1 node)"
    want = (spec.get("Resources") or {}).get("Reservations") or {}
    have = node["Description"]["Resources"]
    cpu, mem = reserved
    if int(want.get("NanoCPUs") or 0) + cpu > int(have["NanoCPUs"]) or \
            int(want.get("MemoryBytes") or 0) + mem > int(have["MemoryBytes"]):
        return "no suitable node (insufficient resources on 1 node)"
    return ""
