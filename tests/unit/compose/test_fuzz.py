"""Whatever a compose file holds, loading ends in a model or in one ComposeError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.compose import spec
from portside.compose.errors import ComposeError
from portside.compose.interpolate import interpolate
from portside.compose.merge import merge
from portside.compose.model import to_dict
from portside.compose.normalise import normalise
from portside.compose.validate import check_project

KEYS = sorted(spec.SERVICE.fields)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000),
                    st.sampled_from(["80:80", "a", "/data", "db", "1m", "0.5", "x:/y:ro",
                                     "${A:-1}", "CMD", "service_healthy", "true", "8080",
                                     "127.0.0.1:80:80/udp", "no", "$$", "0440"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["source", "target", "condition", "type", "test",
                                     "published", "db", "web", "A", "limits", "memory",
                                     "replicas", "aliases", "file", "soft", "hard"]),
                    inner, max_size=3)), max_leaves=8)
services = st.dictionaries(st.sampled_from(["web", "db"]),
                           st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
                           min_size=1, max_size=2)
documents = st.fixed_dictionaries({"services": services}, optional={
    "volumes": st.dictionaries(st.sampled_from(["data", "db"]), st.none() | st.just({}),
                               max_size=2),
    "networks": st.dictionaries(st.sampled_from(["back", "front"]), st.none(), max_size=2),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, documents)
def test_loading_never_crashes(first: dict[str, object], second: dict[str, object]) -> None:
    env = {"A": "2"}
    try:
        loaded = []
        for name, doc in (("a.yaml", first), ("b.yaml", second)):
            data = interpolate(doc, env, name)
            spec.check_file(data, name)
            loaded.append(data)
        merged = merge(loaded)
        check_project(merged, {}, Path("/nonexistent"), env)
        project = normalise(merged, "p", Path("/nonexistent"), env, ["a.yaml"])
        to_dict(project)
        for service in project.services.values():
            service.config_hash()
    except ComposeError as exc:
        assert "\n" not in str(exc)


BASE = {
    "services": {
        "web": {
            "image": "busybox", "build": {"context": ".", "args": {"A": "1"}},
            "command": ["sh", "-c", "x"], "environment": {"A": "1"}, "env_file": [],
            "ports": ["8080:80", {"target": 90, "published": "9090"}],
            "volumes": ["data:/data", {"type": "bind", "source": "./x", "target": "/x"}],
            "networks": {"back": {"aliases": ["w"]}}, "depends_on": {"db": {
                "condition": "service_healthy"}},
            "healthcheck": {"test": ["CMD", "true"], "interval": "1s", "retries": 3},
            "deploy": {"replicas": 1, "resources": {"limits": {"memory": "64m"}}},
            "secrets": [{"source": "pw", "target": "p", "mode": 0o400}],
            "extra_hosts": ["a:10.0.0.1"], "ulimits": {"nofile": {"soft": 1, "hard": 2}},
            "labels": ["a=b"], "logging": {"driver": "json-file", "options": {"a": "b"}},
            "stop_grace_period": "1s", "tmpfs": ["/run"], "dns": "1.1.1.1",
        },
        "db": {"image": "busybox", "profiles": ["x"], "scale": 1},
    },
    "networks": {"back": {"ipam": {"config": [{"subnet": "10.230.0.0/24"}]}}},
    "volumes": {"data": {"labels": {"a": "b"}}},
    "secrets": {"pw": {"environment": "A"}},
}


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(BASE) if p]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_mutated_valid_file(mutations: list[tuple[tuple[object, ...], object]]) -> None:
    import copy

    doc = copy.deepcopy(BASE)
    for path, value in mutations:
        node: object = doc
        try:
            for part in path[:-1]:
                node = node[part]  # type: ignore[index]
            node[path[-1]] = copy.deepcopy(value)  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            continue
    test_loading_never_crashes.hypothesis.inner_test(  # type: ignore[attr-defined]
        doc, {"services": {"web": {}}})


def test_base_loads() -> None:
    env = {"A": "2"}
    data = interpolate(BASE, env, "a.yaml")
    spec.check_file(data, "a.yaml")
    merged = merge([data])
    check_project(merged, {}, Path("/nonexistent"), env)
    project = normalise(merged, "p", Path("/nonexistent"), env, ["a.yaml"])
    assert project.services["web"].secrets[0].target == "/run/secrets/p"
