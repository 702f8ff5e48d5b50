"""Stage 3: the Compose spec's merge rules."""

from __future__ import annotations

from typing import Any

from portside.compose.merge import merge
from portside.compose.tags import Override, Reset


def svc(**body: object) -> dict[str, object]:
    return {"services": {"web": body}}


def merged(*files: dict[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = merge(list(files))["services"]["web"]
    return out


def test_scalars_and_mappings() -> None:
    out = merged(svc(image="a", restart="no", logging={"driver": "json-file",
                                                       "options": {"max-size": "1m"}}),
                 svc(image="b", logging={"options": {"max-file": "2"}}))
    assert out["image"] == "b" and out["restart"] == "no"
    assert out["logging"] == {"driver": "json-file",
                              "options": {"max-size": "1m", "max-file": "2"}}


def test_sequences_append_commands_replace() -> None:
    out = merged(svc(dns=["1.1.1.1"], command=["echo", "foo"], entrypoint="sh",
                     healthcheck={"test": ["CMD", "a"], "interval": "5s"}),
                 svc(dns="8.8.8.8", command=["echo", "bar"],
                     healthcheck={"test": ["CMD", "b"]}))
    assert out["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert out["command"] == ["echo", "bar"]
    assert out["entrypoint"] == "sh"
    assert out["healthcheck"] == {"test": ["CMD", "b"], "interval": "5s"}


def test_lists_or_mappings_merge_as_mappings() -> None:
    out = merged(svc(environment=["A=1", "B=2", "C"], labels={"x": "1"},
                     depends_on=["db"], networks=["front"]),
                 svc(environment={"B": "3"}, labels=["y=2"],
                     depends_on={"db": {"condition": "service_healthy"}},
                     networks={"front": {"aliases": ["w"]}, "back": None}))
    assert out["environment"] == {"A": "1", "B": "3", "C": None}
    assert out["labels"] == {"x": "1", "y": "2"}
    assert out["depends_on"] == {"db": {"condition": "service_healthy", "required": True}}
    assert out["networks"] == {"front": {"aliases": ["w"]}, "back": None}


def test_unique_resources() -> None:
    out = merged(svc(ports=["8080:80", "9090:90"], volumes=["data:/data", "/tmp:/tmp"],
                     secrets=["a", {"source": "b", "target": "t"}]),
                 svc(ports=["8080:80", {"target": 90, "published": 9091}],
                     volumes=[{"type": "volume", "source": "other", "target": "/data"}],
                     secrets=[{"source": "c", "target": "t"}]))
    assert [(p["published"], p["target"]) for p in out["ports"]] == [
        ("9090", 90), ("8080", 80), ("9091", 90)]
    assert [(v.get("source"), v["target"]) for v in out["volumes"]] == [
        ("/tmp", "/tmp"), ("other", "/data")]
    assert out["secrets"] == [{"source": "a"}, {"source": "c", "target": "t"}]


def test_reset_and_override() -> None:
    out = merged(svc(image="a", ports=["80:80"], environment={"A": "1"}),
                 svc(ports=Reset(), environment=Override({"B": "2"})))
    assert "ports" not in out
    assert out["environment"] == {"B": "2"}


def test_services_and_resources_add_up() -> None:
    data = merge([{"services": {"a": {"image": "x"}}, "volumes": {"v": None},
                   "networks": {"n": {"driver": "bridge"}}},
                  {"services": {"b": {"image": "y"}}, "volumes": {"w": {}},
                   "networks": {"n": {"internal": True}}, "name": "p"}])
    assert set(data["services"]) == {"a", "b"}
    assert set(data["volumes"]) == {"v", "w"}
    assert data["networks"]["n"] == {"driver": "bridge", "internal": True}
    assert data["name"] == "p"


def test_merging_canonical_data_again_changes_nothing() -> None:
    once = merged(svc(image="a", ports=["80", "8080:80", {"target": 9, "published": 90}],
                      volumes=["/x", "d:/d"], secrets=["s"], environment=["A=1", "B"],
                      depends_on=["db"], networks=["n"], dns="1.1.1.1"))
    assert merged({"services": {"web": once}}) == once
    assert merged({"services": {"web": once}}, svc()) == once
