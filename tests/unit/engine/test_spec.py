"""Docker's config semantics: merging a create request with the image config, and the
translation to the runtime's ContainerSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.engine import spec
from portside.errors import InvalidArgument

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/bin", "A=image"],
         "WorkingDir": "/srv", "User": "app", "Labels": {"from": "image"},
         "StopSignal": "SIGQUIT", "Healthcheck": {"Test": ["CMD", "check"], "Interval": 5}}


def test_image_defaults_apply() -> None:
    cfg = spec.merge_config({"Image": "x"}, IMAGE)
    assert spec.process_args(cfg) == ["/entry", "default"]
    assert cfg["WorkingDir"] == "/srv" and cfg["User"] == "app"
    assert cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Healthcheck"] == {"Test": ["CMD", "check"], "Interval": 5}


def test_cmd_overrides_image_cmd_keeping_entrypoint() -> None:
    cfg = spec.merge_config({"Cmd": ["mine"]}, IMAGE)
    assert spec.process_args(cfg) == ["/entry", "mine"]


def test_entrypoint_drops_image_cmd() -> None:
    assert spec.process_args(spec.merge_config({"Entrypoint": ["/other"]}, IMAGE)) == ["/other"]
    cfg = spec.merge_config({"Entrypoint": [""], "Cmd": ["ls"]}, IMAGE)
    assert spec.process_args(cfg) == ["ls"]
    with pytest.raises(InvalidArgument, match="no command"):
        spec.process_args(spec.merge_config({"Entrypoint": [""]}, IMAGE))


def test_env_merge_later_wins() -> None:
    cfg = spec.merge_config({"Env": ["A=flag", "B=new"]}, IMAGE)
    assert cfg["Env"] == ["PATH=/bin", "A=flag", "B=new"]
    assert spec.merge_config({}, {})["Env"] == [spec.DEFAULT_PATH]


def test_labels_and_healthcheck_merge() -> None:
    cfg = spec.merge_config({"Labels": {"mine": "1"}, "Healthcheck": {"Interval": 7}}, IMAGE)
    assert cfg["Labels"] == {"from": "image", "mine": "1"}
    assert cfg["Healthcheck"] == {"Test": ["CMD", "check"], "Interval": 7}
    off = spec.merge_config({"Healthcheck": {"Test": ["NONE"]}}, IMAGE)
    assert off["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(("hc", "expected"), [
    ({"NanoCpus": 500_000_000}, (50_000, 100_000)),
    ({"NanoCpus": 2_000_000_000}, (200_000, 100_000)),
    ({"CpuQuota": 20_000, "CpuPeriod": 50_000}, (20_000, 50_000)),
    ({}, (0, 0))])
def test_cpu_quota(hc: dict, expected: tuple[int, int]) -> None:
    assert spec.cpu_quota(hc) == expected


def test_cpu_quota_conflict() -> None:
    with pytest.raises(InvalidArgument):
        spec.cpu_quota({"NanoCpus": 1, "CpuQuota": 1})


def test_runtime_spec_translation() -> None:
    cid = "a" * 64
    cfg = spec.merge_config({"Cmd": ["run"], "Tty": True, "OpenStdin": True}, IMAGE)
    hc = {"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 500_000_000, "PidsLimit": 100,
          "CpuShares": 512, "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"], "ReadonlyRootfs": True,
          "Init": True, "SecurityOpt": ["no-new-privileges"], "NetworkMode": "host",
          "LogConfig": {"Type": "k8s-file", "Config": {"max-size": "1m", "max-file": "3"}},
          "Runtime": "runc"}
    s = spec.runtime_spec(cid, "web", cfg, hc, [Path("/l1")], [], Path("/log"))
    assert s.args == ["/entry", "run"] and s.hostname == cid[:12] and s.tty and s.open_stdin
    r = s.resources
    assert (r.memory, r.memory_swap, r.cpu_quota, r.cpu_period, r.pids_limit, r.cpu_shares) == (
        64 << 20, -1, 50_000, 100_000, 100, 512)
    assert s.cap_add == ["NET_ADMIN"] and s.cap_drop == ["MKNOD"]
    assert s.read_only and s.init and s.no_new_privileges
    assert s.network_namespace == "host" and s.runtime == "runc"
    assert s.log_max_size == 1 << 20 and s.log_max_file == 3
    assert s.stop_signal == "SIGQUIT" and s.user == "app" and s.cwd == "/srv"
    unlimited = spec.runtime_spec(cid, "x", cfg, {"PidsLimit": -1}, [], [], None)
    assert unlimited.resources.pids_limit is None and unlimited.network_namespace is None


def test_runtime_spec_network_namespace() -> None:
    cfg = spec.merge_config({"Cmd": ["x"]}, {})
    joined = spec.runtime_spec("b" * 64, "x", cfg, {"NetworkMode": "container:" + "a" * 64},
                               [], [], None, network_namespace="/proc/7/ns/net")
    assert joined.network_namespace == "/proc/7/ns/net"
    assert not joined.stdin_once
    once = spec.merge_config({"Cmd": ["x"], "OpenStdin": True, "StdinOnce": True}, {})
    assert spec.runtime_spec("b" * 64, "x", once, {}, [], [], None).stdin_once
    s = spec.runtime_spec("b" * 64, "x", cfg, {"NetworkMode": "mynet"}, [], [], None,
                          network_namespace="/run/netns/x")
    assert s.network_namespace == "/run/netns/x"
