"""How `service ls`, `service ps` and `service inspect --pretty` print, as Docker's do."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portside.cli.output import since
from portside.engine.interface import Document, JSONValue, doc_at, int_at, list_at, str_at
from portside.times import parse_time


def _docs(values: Iterable[JSONValue]) -> list[Document]:
    return [v for v in values if isinstance(v, dict)]


def image_of(spec: Document) -> str:
    """The image without its pinned digest, as Docker's lists show it."""
    return str_at(spec, "ContainerSpec", "Image").partition("@")[0]


def mode_of(service: Document) -> str:
    return "global" if "Global" in doc_at(service, "Spec", "Mode") else "replicated"


def ports_of(service: Document) -> str:
    ports = _docs(list_at(service, "Endpoint", "Ports")) or _docs(
        list_at(service, "Spec", "EndpointSpec", "Ports"))
    return ", ".join(
        f"*:{p.get('PublishedPort', '')}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}"
        for p in ports)


def ls_row(service: Document, running: int, desired: int) -> dict[str, Any]:
    mode = mode_of(service)
    return {"ID": str_at(service, "ID"), "Name": str_at(service, "Spec", "Name"),
            "Mode": mode, "Replicas": f"{running}/{desired}",
            "Image": image_of(doc_at(service, "Spec", "TaskTemplate")),
            "Ports": ports_of(service)}


def _state(task: Document) -> str:
    state = str_at(task, "Status", "State")
    ts = parse_time(str_at(task, "Status", "Timestamp"))
    when = since(ts).replace(" ago", "") + " ago" if ts else ""
    return f"{state.capitalize()} {when}".strip()


def ps_rows(tasks: list[Document], names: dict[str, str], hosts: dict[str, str],
            no_trunc: bool = False) -> list[dict[str, Any]]:
    """Task rows grouped by slot (or node, for global services), newest first, older
    ones marked `\\_` as Swarm's history is shown."""
    def slot_key(t: Document) -> tuple[str, str]:
        slot = int_at(t, "Slot")
        return (str_at(t, "ServiceID"), f"{slot:09d}" if slot else str_at(t, "NodeID"))

    groups: dict[tuple[str, str], list[Document]] = {}
    for t in tasks:
        groups.setdefault(slot_key(t), []).append(t)
    rows = []
    for key in sorted(groups):
        history = sorted(groups[key], key=lambda t: str_at(t, "CreatedAt"), reverse=True)
        for i, t in enumerate(history):
            service = names.get(str_at(t, "ServiceID"), str_at(t, "ServiceID")[:12])
            slot = int_at(t, "Slot")
            name = f"{service}.{slot}" if slot else f"{service}.{str_at(t, 'NodeID')[:25]}"
            error = str_at(t, "Status", "Err")
            ports = ", ".join(
                f"*:{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}"
                for p in _docs(list_at(t, "Status", "PortStatus", "Ports")))
            rows.append({
                "ID": str_at(t, "ID") if no_trunc else str_at(t, "ID")[:12],
                "Name": name if i == 0 else f" \\_ {name}",
                "Image": image_of(doc_at(t, "Spec")),
                "Node": hosts.get(str_at(t, "NodeID"), str_at(t, "NodeID")),
                "DesiredState": str_at(t, "DesiredState").capitalize(),
                "CurrentState": _state(t),
                "Error": error if no_trunc or len(error) < 60 else f"\"{error[:57]}…\"",
                "Ports": ports,
            })
    return rows


def _duration(ns: int) -> str:
    seconds = ns / 1e9
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return (f"{int(h)}h" if h else "") + (f"{int(m)}m" if h or m else "") + f"{s:g}s"


def pretty(service: Document) -> list[str]:
    """`service inspect --pretty`: Docker's human layout of the fields set."""
    spec = doc_at(service, "Spec")
    task = doc_at(spec, "TaskTemplate")
    cs = doc_at(task, "ContainerSpec")
    out = [f"ID:\t\t{str_at(service, 'ID')}", f"Name:\t\t{str_at(spec, 'Name')}"]
    labels = doc_at(spec, "Labels")
    if labels:
        out.append("Labels:")
        out += [f" {k}={v}" for k, v in labels.items()]
    if mode_of(service) == "global":
        out.append("Service Mode:\tGlobal")
    else:
        out += ["Service Mode:\tReplicated",
                f" Replicas:\t{int_at(spec, 'Mode', 'Replicated', 'Replicas')}"]
    status = doc_at(service, "UpdateStatus")
    if status:
        out += ["UpdateStatus:", f" State:\t\t{str_at(status, 'State')}",
                f" Started:\t{str_at(status, 'StartedAt')}"]
        if str_at(status, "CompletedAt"):
            out.append(f" Completed:\t{str_at(status, 'CompletedAt')}")
        out.append(f" Message:\t{str_at(status, 'Message')}")
    constraints = list_at(task, "Placement", "Constraints")
    out.append("Placement:")
    if constraints:
        out.append(f" Constraints:\t{constraints}")
    for title, key in (("UpdateConfig", "UpdateConfig"), ("RollbackConfig", "RollbackConfig")):
        conf = doc_at(spec, key)
        if not conf:
            continue
        out += [f"{title}:", f" Parallelism:\t{int_at(conf, 'Parallelism')}"]
        if int_at(conf, "Delay"):
            out.append(f" Delay:\t\t{_duration(int_at(conf, 'Delay'))}")
        out += [f" On failure:\t{str_at(conf, 'FailureAction') or 'pause'}",
                f" Monitor:\t{_duration(int_at(conf, 'Monitor') or 5 * 10**9)}",
                f" Max failure ratio: {conf.get('MaxFailureRatio', 0)}",
                f" {title[:-6]} order:{'    ' if key == 'UpdateConfig' else '  '}"
                f"{str_at(conf, 'Order') or 'stop-first'}"]
    out += ["ContainerSpec:", f" Image:\t\t{str_at(cs, 'Image')}"]
    if list_at(cs, "Args"):
        out.append(f" Args:\t\t{' '.join(map(str, list_at(cs, 'Args')))}")
    if list_at(cs, "Env"):
        out.append(f" Env:\t\t{' '.join(map(str, list_at(cs, 'Env')))}")
    if cs.get("Init"):
        out.append(" Init:\t\ttrue")
    mounts = _docs(list_at(cs, "Mounts"))
    if mounts:
        out.append("Mounts:")
        for m in mounts:
            out += [f" Target:\t{m.get('Target')}", f"  Source:\t{m.get('Source', '')}",
                    f"  ReadOnly:\t{str(bool(m.get('ReadOnly'))).lower()}",
                    f"  Type:\t\t{m.get('Type')}"]
    res = doc_at(task, "Resources")
    if res:
        out.append("Resources:")
        for title, key in (("Reservations", "Reservations"), ("Limits", "Limits")):
            part = doc_at(res, key)
            if part:
                out.append(f" {title}:")
                if int_at(part, "NanoCPUs"):
                    out.append(f"  CPU:\t\t{int_at(part, 'NanoCPUs') / 1e9:g}")
                if int_at(part, "MemoryBytes"):
                    out.append(f"  Memory:\t{_bytes(int_at(part, 'MemoryBytes'))}")
    nets = _docs(list_at(task, "Networks"))
    if nets:
        out.append("Networks: " + " ".join(str(n.get("Target")) for n in nets))
    out.append(f"Endpoint Mode:\t{str_at(spec, 'EndpointSpec', 'Mode') or 'vip'}")
    ports = _docs(list_at(spec, "EndpointSpec", "Ports"))
    if ports:
        out.append("Ports:")
        for p in ports:
            out.append(f" PublishedPort = {p.get('PublishedPort', '')}")
            out += [f"  Protocol = {p.get('Protocol', 'tcp')}",
                    f"  TargetPort = {p.get('TargetPort')}",
                    f"  PublishMode = {p.get('PublishMode', 'ingress')}"]
    return [_align(line) for line in out]


def _align(line: str) -> str:
    """`Key:\tvalue` -> the key padded to Docker's column (its tabwriter's output)."""
    label, tab, value = line.partition("\t")
    return f"{label:<16}{value.lstrip(chr(9))}" if tab else line


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return f"{n}B"


def log_line(line: bytes, timestamps: bool, raw: bool, service: str, slots: dict[str, int],
             hosts: dict[str, str], no_task_ids: bool = False, no_trunc: bool = False) -> bytes:
    """One line of `service logs`: the daemon sends `[TIME ]DETAILS MESSAGE`, DETAILS being
    Docker's `com.docker.swarm.node.id=..,...service.id=..,...task.id=..`; the docker client
    prints `name.slot.task@node    | [TIME ]MESSAGE`, and so does this."""
    stamp, rest = b"", line
    if timestamps:
        stamp, _, rest = rest.partition(b" ")
        stamp += b" "
    if not rest.startswith(b"com.docker.swarm."):
        return stamp + rest
    details, _, message = rest.partition(b" ")
    if raw:
        return stamp + message
    attrs = dict(item.partition(b"=")[::2] for item in details.split(b","))
    task = attrs.get(b"com.docker.swarm.task.id", b"").decode()
    node = attrs.get(b"com.docker.swarm.node.id", b"").decode()
    slot = slots.get(task)
    prefix = f"{service}.{slot if slot else node}"
    if not no_task_ids:
        prefix += f".{task if no_trunc else task[:12]}"
    prefix += f"@{hosts.get(node, node)}"
    return f"{prefix:<30} | ".encode() + stamp + message
