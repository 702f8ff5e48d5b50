"""`service create`/`update` flags -> ServiceSpec, as Docker's CLI builds it."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from portside.cli import servicespec
from portside.cli.services import service
from portside.errors import InvalidArgument

ISSUE_LINE = [
    "--name", "web", "--replicas", "3", "-p", "8080:80", "--network", "shop",
    "--health-cmd", "wget -qO- localhost/health", "--health-interval", "2s",
    "--update-parallelism", "1", "--update-delay", "2s", "--update-order", "start-first",
    "--update-monitor", "5s", "--update-failure-action", "rollback",
    "--update-max-failure-ratio", "0", "--restart-condition", "on-failure",
    "--restart-max-attempts", "5", "--limit-memory", "64m", "--reserve-cpu", "0.1",
    "--env", "K=V", "--mount", "type=volume,src=data,dst=/data",
    "127.0.0.1:5000/shop/web:1",
]


def spec_of(argv: list[str]) -> dict[str, Any]:
    """The spec `service create argv` would send (click parses, nothing is sent)."""
    command = service.commands["create"]
    ctx = command.make_context("create", list(argv))
    kw = dict(ctx.params)
    image, args = kw.pop("image"), kw.pop("args")
    kw.pop("detach"), kw.pop("quiet")
    return servicespec.create_spec(kw.get("name") or "", image, args, kw)


def test_the_issue_command_line_builds_dockers_spec() -> None:
    spec = spec_of(ISSUE_LINE)
    assert spec["Name"] == "web"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    cs = spec["TaskTemplate"]["ContainerSpec"]
    assert cs["Image"] == "127.0.0.1:5000/shop/web:1"
    assert cs["Env"] == ["K=V"]
    assert cs["Mounts"] == [{"Type": "volume", "Target": "/data", "Source": "data"}]
    assert cs["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -qO- localhost/health"],
                                 "Interval": 2_000_000_000}
    assert spec["UpdateConfig"] == {"Parallelism": 1, "Delay": 2_000_000_000,
                                    "Order": "start-first", "Monitor": 5_000_000_000,
                                    "FailureAction": "rollback", "MaxFailureRatio": 0.0}
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure",
                                                     "MaxAttempts": 5}
    assert spec["TaskTemplate"]["Resources"] == {
        "Limits": {"MemoryBytes": 64 << 20}, "Reservations": {"NanoCPUs": 100_000_000}}
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "shop"}]
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]


def test_global_mode_and_command_args() -> None:
    spec = spec_of(["--name", "agent", "--mode", "global", "--endpoint-mode", "dnsrr",
                    "--constraint", "node.role==manager", "busybox", "sh", "-c", "sleep 60"])
    assert spec["Mode"] == {"Global": {}}
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["sh", "-c", "sleep 60"]
    assert spec["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==manager"]}
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}


def test_update_changes_only_what_a_flag_names() -> None:
    before = spec_of(ISSUE_LINE)
    after = servicespec.apply(before, {"image": "127.0.0.1:5000/shop/web:2",
                                       "env_add": ["K=W", "X=1"], "publish_rm": ["80"],
                                       "mount_rm": ["/data"], "label_add": ["tier=front"]})
    cs = after["TaskTemplate"]["ContainerSpec"]
    assert cs["Image"] == "127.0.0.1:5000/shop/web:2"
    assert cs["Env"] == ["K=W", "X=1"]
    assert cs["Mounts"] == [] and after["EndpointSpec"]["Ports"] == []
    assert after["Labels"] == {"tier": "front"}
    assert after["UpdateConfig"] == before["UpdateConfig"]
    assert before["TaskTemplate"]["ContainerSpec"]["Image"].endswith(":1")  # not mutated
    forced = servicespec.apply(after, {"force": True})
    assert forced["TaskTemplate"]["ForceUpdate"] == 1


def test_publish_long_syntax_and_secrets() -> None:
    assert servicespec.parse_publish("published=8080,target=80,protocol=udp,mode=host") == [
        {"Protocol": "udp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]
    assert servicespec.parse_file_ref("source=db,target=pw,mode=0400", "--secret") == {
        "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretName": "db"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--name", "w", "--replicas", "three", "img"], "invalid --replicas 'three'"),
    (["--name", "w", "-p", "80:http", "img"], "invalid --publish"),
    (["--name", "w", "-p", "1.2.3.4:80:80", "img"], "drop the IP"),
    (["--name", "w", "--mount", "type=volume,src=data", "img"], "target is required"),
    (["--name", "w", "--update-order", "random", "img"], "invalid --update-order"),
    (["--name", "w", "--update-delay", "soon", "img"], "invalid --update-delay"),
    (["--name", "w", "--mode", "global", "--replicas", "2", "img"], "replicated mode"),
    (["--name", "w", "--constraint", "node.role", "img"], "invalid --constraint"),
    (["img"], "needs a name"),
])
def test_bad_flags_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        spec_of(argv)
    assert "\n" not in str(info.value)


def test_bad_input_exits_non_zero_through_the_command() -> None:
    result = CliRunner().invoke(service, ["create", "--name", "w", "--replicas", "x", "img"])
    assert result.exit_code != 0


@given(st.text(max_size=30))
def test_publish_parser_never_crashes(text: str) -> None:
    try:
        ports = servicespec.parse_publish(text)
    except InvalidArgument:
        return
    assert all(1 <= p["TargetPort"] <= 65535 for p in ports)


def test_log_lines_are_prefixed_as_the_docker_client_does() -> None:
    from portside.cli.servicerender import log_line

    line = (b"com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,"
            b"com.docker.swarm.task.id=abcdefghijklmnopqrstuvwxy hello\n")
    out = log_line(line, False, False, "web", {"abcdefghijklmnopqrstuvwxy": 2}, {"n1": "host"})
    assert out == b"web.2.abcdefghijkl@host".ljust(30) + b" | hello\n"
    assert log_line(b"2026-12-04T00:00:00Z " + line, True, True, "web", {}, {}) == \
        b"2026-12-04T00:00:00Z hello\n"
