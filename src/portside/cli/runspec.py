"""The flags of `run` and `create` (one table, no click) and Docker's create body.

`FLAGS` is the single description of the flags: `runflags` turns it into click options,
and `parse_run` reads `portside run` arguments with it directly, so the hot path of
`run` needs no click. `parse_run` returns None for anything it does not handle
(`--help`, an unknown or malformed flag), and the caller leaves it to click, which says
what is wrong.
"""

from __future__ import annotations

import os

from portside.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from typing import Any


class _Options:
    """`portside.engine.options`, imported on first use (not by a plain `run`)."""

    def __getattr__(self, name: str) -> Any:
        from portside.engine import options

        return getattr(options, name)


opt = _Options()


class Flag:
    """One flag: its names ("-e", "--env"), the keyword it fills, and its kind: "flag",
    "str", "int" or "multi" (repeatable)."""

    __slots__ = ("choices", "decls", "default", "dest", "help", "kind")

    def __init__(self, decls: tuple[str, ...], dest: str, kind: str, default: Any = None,
                 help: str = "", choices: tuple[str, ...] = ()) -> None:
        self.decls, self.dest, self.kind = decls, dest, kind
        self.default, self.help, self.choices = default, help, choices


def _f(decls: str, dest: str, kind: str, default: Any, help: str,
       choices: tuple[str, ...] = ()) -> Flag:
    return Flag(tuple(decls.split()), dest, kind, default, help, choices)


FLAGS: list[Flag] = [
    _f("--name", "name", "str", "", "Assign a name to the container."),
    _f("-e --env", "env", "multi", (), "Set environment variables (K=V or K)."),
    _f("--env-file", "env_file", "multi", (), "Read environment variables from a file."),
    _f("-v --volume", "volumes", "multi", (), "Bind mount or volume: [SRC:]DST[:ro|rw|nocopy]."),
    _f("--mount", "mounts", "multi", (),
       "type=bind|volume|tmpfs,source=...,target=...[,readonly]."),
    _f("--tmpfs", "tmpfs", "multi", (), "Mount a tmpfs: PATH[:OPTIONS]."),
    _f("--secret", "secrets", "multi", (),
       "Give a secret at /run/secrets: NAME[,target=FILE,uid=N,gid=N,mode=0444]."),
    _f("-w --workdir", "workdir", "str", "", "Working directory inside the container."),
    _f("-u --user", "user", "str", "", "name|uid[:group|gid]."),
    _f("--entrypoint", "entrypoint", "str", None, "Overwrite the image's ENTRYPOINT."),
    _f("-t --tty", "tty", "flag", False, "Allocate a pseudo-TTY."),
    _f("-i --interactive", "interactive", "flag", False, "Keep STDIN open."),
    _f("-m --memory", "memory", "str", None, "Memory limit (e.g. 64m)."),
    _f("--memory-swap", "memory_swap", "str", None, "Memory + swap limit; -1 unlimited swap."),
    _f("--cpus", "cpus", "str", None, "Number of CPUs (e.g. 0.5)."),
    _f("-c --cpu-shares", "cpu_shares", "int", None, "CPU shares (weight)."),
    _f("--pids-limit", "pids_limit", "int", None, "Process limit (-1 unlimited)."),
    _f("--restart", "restart", "str", "no", "no, on-failure[:N], always, unless-stopped."),
    _f("--rm", "auto_remove", "flag", False, "Remove the container when it exits."),
    _f("--health-cmd", "health_cmd", "str", None, "Command to check health."),
    _f("--health-interval", "health_interval", "str", None, "Time between checks (e.g. 30s)."),
    _f("--health-timeout", "health_timeout", "str", None, "Maximum time of one check."),
    _f("--health-retries", "health_retries", "int", None, "Failures to be unhealthy."),
    _f("--health-start-period", "health_start_period", "str", None,
       "Grace period before counting."),
    _f("--health-start-interval", "health_start_interval", "str", None,
       "Interval during the start period."),
    _f("--no-healthcheck", "no_healthcheck", "flag", False, "Disable any HEALTHCHECK."),
    _f("--init", "init", "flag", False, "Run an init (tini) as PID 1."),
    _f("--read-only", "read_only", "flag", False, "Mount the root filesystem read-only."),
    _f("--cap-add", "cap_add", "multi", (), "Add Linux capabilities."),
    _f("--cap-drop", "cap_drop", "multi", (), "Drop Linux capabilities."),
    _f("--privileged", "privileged", "flag", False, "Give extended privileges."),
    _f("--security-opt", "security_opt", "multi", (), "no-new-privileges, seccomp=..."),
    _f("--runtime", "runtime", "str", None, "OCI runtime.", ("crun", "runc")),
    _f("--network --net", "network", "str", "default",
       "bridge (default), none, host, container:<name|id> or a network."),
    _f("--network-alias", "network_aliases", "multi", (),
       "Another name of the container on its network."),
    _f("--ip", "ip", "str", None, "IPv4 address on the network (e.g. 10.89.5.7)."),
    _f("--dns", "dns", "multi", (), "A DNS server for the container."),
    _f("--dns-search", "dns_search", "multi", (), "A DNS search domain."),
    _f("--dns-option", "dns_option", "multi", (), "A resolv.conf option (e.g. ndots:2)."),
    _f("--add-host", "add_host", "multi", (), "Add a host to /etc/hosts (host:ip)."),
    _f("-p --publish", "publish", "multi", (),
       "Publish a port: [ip:][hostPort:]containerPort[/proto]."),
    _f("--expose", "expose", "multi", (), "Expose a port or range (80, 8000-8010/udp)."),
    _f("-P --publish-all", "publish_all", "flag", False,
       "Publish every EXPOSEd port on a random host port."),
    _f("-l --label", "labels", "multi", (), "Set metadata (K=V)."),
    _f("--log-opt", "log_opt", "multi", (), "max-size=SIZE, max-file=N."),
    _f("--stop-signal", "stop_signal", "str", None, "Signal to stop the container."),
    _f("--stop-timeout", "stop_timeout", "int", None, "Seconds before SIGKILL."),
    _f("--hostname", "hostname", "str", "", "Container host name."),
]
DETACH = _f("-d --detach", "detach", "flag", False, "Run in the background; print the id.")


def parse_run(args: list[str]) -> tuple[dict[str, Any], str, list[str]] | None:
    """`run` arguments (after the word `run`) -> (flags by dest, image, command), or None
    for click to handle. Options stop at the image, as for click's run command."""
    by_name = {d: f for f in (DETACH, *FLAGS) for d in f.decls}
    kw: dict[str, Any] = {f.dest: list(f.default) if f.kind == "multi" else f.default
                          for f in (DETACH, *FLAGS)}
    i = 0

    def take(flag: Flag, value: str) -> bool:
        if flag.kind == "int":
            try:
                kw[flag.dest] = int(value)
            except ValueError:
                return False
        elif flag.kind == "multi":
            kw[flag.dest].append(value)
        elif flag.choices and value not in flag.choices:
            return False
        else:
            kw[flag.dest] = value
        return True

    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            flag = by_name.get(name)
            if flag is None:
                return None
            if flag.kind == "flag":
                if eq:
                    return None
                kw[flag.dest] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(args):
                        return None
                    value = args[i]
                if not take(flag, value):
                    return None
            i += 1
            continue
        j = 1  # short options, possibly combined (-it) or with the value attached (-p80)
        while j < len(arg):
            flag = by_name.get("-" + arg[j])
            if flag is None:
                return None
            if flag.kind == "flag":
                kw[flag.dest] = True
                j += 1
                continue
            value = arg[j + 1:]
            if not value:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            if not take(flag, value):
                return None
            break
        i += 1
    if i >= len(args):
        return None  # no image: click says so
    for f in FLAGS:
        if f.kind == "multi":
            kw[f.dest] = tuple(kw[f.dest])
    return kw, args[i], args[i + 1:]


def _ns(text: str | None, what: str) -> int:
    return opt.parse_duration(text, what) if text else 0


def build_body(image: str, command: tuple[str, ...], kw: dict[str, Any]) -> dict[str, Any]:
    """Docker's POST /containers/create body from the parsed flags (validated here)."""
    env: list[str] = []
    for path in kw.get("env_file") or ():
        try:
            with open(path) as f:
                env += opt.parse_env_file(f.read(), os.environ)
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    if kw.get("env"):
        env += opt.parse_env(list(kw["env"]), os.environ)
    for v in kw.get("volumes") or ():
        opt.parse_volume(v)
    mounts = [opt.parse_mount(m).to_api() for m in kw.get("mounts") or ()]
    tmpfs = dict(opt.parse_tmpfs(t) for t in kw.get("tmpfs") or ())
    restart: dict[str, Any] = {"Name": "no", "MaximumRetryCount": 0}
    if (kw.get("restart") or "no") != "no":
        restart = opt.parse_restart(kw["restart"]).to_api()
    if kw.get("auto_remove") and restart["Name"] != "no":
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    host: dict[str, Any] = {
        "Binds": list(kw.get("volumes") or ()) or None, "Mounts": mounts or None,
        "Tmpfs": tmpfs or None, "RestartPolicy": restart,
        "AutoRemove": bool(kw.get("auto_remove")), "Init": bool(kw.get("init")) or None,
        "ReadonlyRootfs": bool(kw.get("read_only")),
        "CapAdd": list(kw.get("cap_add") or ()) or None,
        "CapDrop": list(kw.get("cap_drop") or ()) or None,
        "Privileged": bool(kw.get("privileged")),
        "SecurityOpt": list(kw.get("security_opt") or ()) or None,
        "NetworkMode": kw.get("network") or "default",
        "LogConfig": {"Type": "k8s-file", "Config": opt.parse_log_opts(list(kw["log_opt"]))
                      if kw.get("log_opt") else {}},
    }
    if kw.get("runtime"):
        host["Runtime"] = kw["runtime"]
    if kw.get("secrets"):
        from portside.engine.secretfiles import SECRETS_KEY, parse_secret

        host[SECRETS_KEY] = [parse_secret(s) for s in kw["secrets"]]
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
        "Labels": opt.parse_labels(list(kw["labels"])) or None if kw.get("labels") else None,
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


def _check_addresses(kw: dict[str, Any]) -> None:
    """--dns servers and --ip are addresses."""
    import ipaddress

    for server in kw.get("dns") or ():
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"{server} is not an ip address") from None
    if kw.get("ip"):
        try:
            ipaddress.IPv4Address(kw["ip"])
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address: {kw['ip']}") from None


def _network_options(host: dict[str, Any], kw: dict[str, Any]) -> None:
    """--dns, --dns-search, --dns-option, --add-host, -P into the HostConfig."""
    if kw.get("dns") or kw.get("ip"):  # (ipaddress costs milliseconds to import)
        _check_addresses(kw)
    for entry in kw.get("add_host") or ():
        name, sep, addr = entry.partition(":")
        if not sep or not name or not addr:
            raise InvalidArgument(f"bad format for add-host: {entry!r}")
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
