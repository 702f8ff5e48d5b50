"""The flags of `run` and `create`, and their translation into Docker's create body."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from portside.engine import options as opt
from portside.errors import InvalidArgument

_FLAGS: list[Callable[[Any], Any]] = [
    click.option("--name", default="", help="Assign a name to the container."),
    click.option("-e", "--env", "env", multiple=True, help="Set environment variables (K=V or K)."),
    click.option("--env-file", multiple=True, type=click.Path(dir_okay=False),
                 help="Read environment variables from a file."),
    click.option("-v", "--volume", "volumes", multiple=True,
                 help="Bind mount or volume: [SRC:]DST[:ro|rw|nocopy]."),
    click.option("--mount", "mounts", multiple=True,
                 help="type=bind|volume|tmpfs,source=...,target=...[,readonly]."),
    click.option("--tmpfs", multiple=True, help="Mount a tmpfs: PATH[:OPTIONS]."),
    click.option("-w", "--workdir", default="", help="Working directory inside the container."),
    click.option("-u", "--user", default="", help="name|uid[:group|gid]."),
    click.option("--entrypoint", default=None, help="Overwrite the image's ENTRYPOINT."),
    click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
    click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
    click.option("-m", "--memory", default=None, help="Memory limit (e.g. 64m)."),
    click.option("--memory-swap", default=None, help="Memory + swap limit; -1 unlimited swap."),
    click.option("--cpus", default=None, help="Number of CPUs (e.g. 0.5)."),
    click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (weight)."),
    click.option("--pids-limit", type=int, default=None, help="Process limit (-1 unlimited)."),
    click.option("--restart", default="no", help="no, on-failure[:N], always, unless-stopped."),
    click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--health-cmd", default=None, help="Command to check health."),
    click.option("--health-interval", default=None, help="Time between checks (e.g. 30s)."),
    click.option("--health-timeout", default=None, help="Maximum time of one check."),
    click.option("--health-retries", type=int, default=None, help="Failures to be unhealthy."),
    click.option("--health-start-period", default=None, help="Grace period before counting."),
    click.option("--health-start-interval", default=None, help="Interval during the start period."),
    click.option("--no-healthcheck", is_flag=True, help="Disable any HEALTHCHECK."),
    click.option("--init", is_flag=True, help="Run an init (tini) as PID 1."),
    click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only."),
    click.option("--cap-add", multiple=True, help="Add Linux capabilities."),
    click.option("--cap-drop", multiple=True, help="Drop Linux capabilities."),
    click.option("--privileged", is_flag=True, help="Give extended privileges."),
    click.option("--security-opt", multiple=True, help="no-new-privileges, seccomp=..."),
    click.option("--runtime", default=None, type=click.Choice(["crun", "runc"]),
                 help="OCI runtime."),
    click.option("--network", "--net", "network", default="default",
                 help="bridge (default), none, host, container:<name|id> or a network."),
    click.option("--network-alias", "network_aliases", multiple=True,
                 help="Another name of the container on its network."),
    click.option("--ip", default=None, help="IPv4 address on the network (e.g. 10.89.5.7)."),
    click.option("--dns", multiple=True, help="A DNS server for the container."),
    click.option("--dns-search", multiple=True, help="A DNS search domain."),
    click.option("--dns-option", multiple=True, help="A resolv.conf option (e.g. ndots:2)."),
    click.option("--add-host", multiple=True, help="Add a host to /etc/hosts (host:ip)."),
    click.option("-p", "--publish", multiple=True,
                 help="Publish a port: [ip:][hostPort:]containerPort[/proto]."),
    click.option("--expose", multiple=True, help="Expose a port or range (80, 8000-8010/udp)."),
    click.option("-P", "--publish-all", is_flag=True,
                 help="Publish every EXPOSEd port on a random host port."),
    click.option("-l", "--label", "labels", multiple=True, help="Set metadata (K=V)."),
    click.option("--log-opt", multiple=True, help="max-size=SIZE, max-file=N."),
    click.option("--stop-signal", default=None, help="Signal to stop the container."),
    click.option("--stop-timeout", type=int, default=None, help="Seconds before SIGKILL."),
    click.option("--hostname", default="", help="Container host name."),
]


def run_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(_FLAGS):
        f = decorator(f)
    return f


def _ns(text: str | None, what: str) -> int:
    return opt.parse_duration(text, what) if text else 0


def build_body(image: str, command: tuple[str, ...], kw: dict[str, Any]) -> dict[str, Any]:
    """Docker's POST /containers/create body from the parsed flags (validated here)."""
    env: list[str] = []
    for path in kw.get("env_file") or ():
        try:
            env += opt.parse_env_file(Path(path).read_text(), os.environ)
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    env += opt.parse_env(list(kw.get("env") or ()), os.environ)
    for v in kw.get("volumes") or ():
        opt.parse_volume(v)
    mounts = [opt.parse_mount(m).to_api() for m in kw.get("mounts") or ()]
    tmpfs = dict(opt.parse_tmpfs(t) for t in kw.get("tmpfs") or ())
    restart = opt.parse_restart(kw.get("restart") or "no")
    if kw.get("auto_remove") and restart.name != "no":
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    host: dict[str, Any] = {
        "Binds": list(kw.get("volumes") or ()) or None, "Mounts": mounts or None,
        "Tmpfs": tmpfs or None, "RestartPolicy": restart.to_api(),
        "AutoRemove": bool(kw.get("auto_remove")), "Init": bool(kw.get("init")) or None,
        "ReadonlyRootfs": bool(kw.get("read_only")),
        "CapAdd": list(kw.get("cap_add") or ()) or None,
        "CapDrop": list(kw.get("cap_drop") or ()) or None,
        "Privileged": bool(kw.get("privileged")),
        "SecurityOpt": list(kw.get("security_opt") or ()) or None,
        "NetworkMode": kw.get("network") or "default",
        "LogConfig": {"Type": "k8s-file", "Config": opt.parse_log_opts(list(kw.get("log_opt")
                                                                            or ()))},
    }
    if kw.get("runtime"):
        host["Runtime"] = kw["runtime"]
    if kw.get("memory"):
        host["Memory"] = opt.parse_bytes(kw["memory"], "memory")
    if kw.get("memory_swap"):
        host["MemorySwap"] = opt.parse_memory_swap(kw["memory_swap"])
    if kw.get("cpus"):
        host["NanoCpus"] = opt.parse_cpus(kw["cpus"])
    if kw.get("cpu_shares") is not None:
        host["CpuShares"] = kw["cpu_shares"]
    if kw.get("pids_limit") is not None:
        host["PidsLimit"] = kw["pids_limit"]
    if kw.get("publish"):
        from portside.network.containers import port_bindings
        from portside.network.ports import parse_publish

        exposed, bindings = port_bindings([m for p in kw["publish"] for m in parse_publish(p)])
        host["PortBindings"] = bindings
    _network_options(host, kw)
    body: dict[str, Any] = {
        "Image": image, "Cmd": list(command) or None, "Env": env or None,
        "WorkingDir": kw.get("workdir") or "", "User": kw.get("user") or "",
        "Labels": opt.parse_labels(list(kw.get("labels") or ())) or None,
        "Tty": bool(kw.get("tty")), "OpenStdin": bool(kw.get("interactive")),
        "StdinOnce": bool(kw.get("interactive")), "AttachStdin": bool(kw.get("interactive")),
        "AttachStdout": True, "AttachStderr": True, "Hostname": kw.get("hostname") or "",
        "HostConfig": host,
    }
    if kw.get("publish"):
        body["ExposedPorts"] = exposed
    if kw.get("expose"):
        body["ExposedPorts"] = {**(body.get("ExposedPorts") or {}), **_exposed(kw["expose"])}
    if kw.get("network_aliases") or kw.get("ip"):
        network = kw.get("network") or "default"
        if network in ("default", "bridge", "host", "none") or network.startswith("container:"):
            raise InvalidArgument("network-scoped aliases and addresses are only supported for"
                                  " user-defined networks")
        endpoint: dict[str, Any] = {"Aliases": list(kw.get("network_aliases") or ()) or None}
        if kw.get("ip"):
            endpoint["IPAMConfig"] = {"IPv4Address": kw["ip"]}
        body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    if kw.get("entrypoint") is not None:
        body["Entrypoint"] = [kw["entrypoint"]]
    if kw.get("stop_signal"):
        opt.parse_signal(kw["stop_signal"])
        body["StopSignal"] = kw["stop_signal"]
    if kw.get("stop_timeout") is not None:
        body["StopTimeout"] = kw["stop_timeout"]
    health = _healthcheck(kw)
    if health is not None:
        body["Healthcheck"] = health
    return body


def _exposed(values: tuple[str, ...]) -> dict[str, Any]:
    from portside.network.ports import parse_port_key

    out: dict[str, Any] = {}
    for value in values:
        key = value if "/" in value else value + "/tcp"
        lo, hi, proto = parse_port_key(key)
        out.update({f"{p}/{proto}": {} for p in range(lo, hi + 1)})
    return out


def _network_options(host: dict[str, Any], kw: dict[str, Any]) -> None:
    """--dns, --dns-search, --dns-option, --add-host, -P into the HostConfig."""
    import ipaddress

    for server in kw.get("dns") or ():
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"{server} is not an ip address") from None
    for entry in kw.get("add_host") or ():
        name, sep, addr = entry.partition(":")
        if not sep or not name or not addr:
            raise InvalidArgument(f"bad format for add-host: {entry!r}")
    if kw.get("ip"):
        try:
            ipaddress.IPv4Address(kw["ip"])
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address: {kw['ip']}") from None
    for key, flag in (("Dns", "dns"), ("DnsSearch", "dns_search"),
                      ("DnsOptions", "dns_option"), ("ExtraHosts", "add_host")):
        if kw.get(flag):
            host[key] = list(kw[flag])
    if kw.get("publish_all"):
        host["PublishAllPorts"] = True


def _healthcheck(kw: dict[str, Any]) -> dict[str, Any] | None:
    if kw.get("no_healthcheck"):
        if kw.get("health_cmd"):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    doc: dict[str, Any] = {}
    if kw.get("health_cmd"):
        doc["Test"] = ["CMD-SHELL", kw["health_cmd"]]
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod"),
                      ("health_start_interval", "StartInterval")):
        if kw.get(flag):
            value = _ns(kw[flag], "--" + flag.replace("_", "-"))
            if value < 0:
                raise InvalidArgument(f"--{flag.replace('_', '-')} cannot be negative")
            doc[key] = value
    if kw.get("health_retries") is not None:
        if kw["health_retries"] < 0:
            raise InvalidArgument("--health-retries cannot be negative")
        doc["Retries"] = kw["health_retries"]
    return doc or None
