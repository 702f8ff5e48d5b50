"""The dependency-ordered parallel executor."""

from __future__ import annotations

import threading

from portside.compose.parallel import Skipped, run_ordered

GRAPH = {"web": {"api"}, "api": {"db", "cache"}, "db": set(), "cache": set(), "lone": set()}


def test_order_respects_dependencies() -> None:
    order: list[str] = []
    lock = threading.Lock()

    def act(node: str) -> None:
        with lock:
            order.append(node)

    assert run_ordered(GRAPH, act) == {}
    assert sorted(order) == sorted(GRAPH)
    for node, deps in GRAPH.items():
        assert all(order.index(d) < order.index(node) for d in deps)


def test_reverse_order_for_stopping() -> None:
    order: list[str] = []
    run_ordered(GRAPH, order.append, reverse=True, workers=1)
    for node, deps in GRAPH.items():
        assert all(order.index(d) > order.index(node) for d in deps)


def test_independent_nodes_run_together() -> None:
    barrier = threading.Barrier(2, timeout=10)
    assert run_ordered({"a": set(), "b": set()}, lambda n: barrier.wait()) == {}


def test_failure_skips_dependents_only() -> None:
    ran: list[str] = []

    def act(node: str) -> None:
        if node == "db":
            raise RuntimeError("db broke")
        ran.append(node)

    failed = run_ordered(GRAPH, act, workers=1)
    assert isinstance(failed["db"], RuntimeError)
    assert isinstance(failed["api"], Skipped) and failed["api"].because == "db"
    assert isinstance(failed["web"], Skipped) and failed["web"].because == "api"
    assert sorted(ran) == ["cache", "lone"]


def test_events() -> None:
    seen: list[tuple[str, str]] = []
    run_ordered({"a": set(), "b": {"a"}}, lambda n: None, workers=1,
                on_event=lambda node, event, err: seen.append((node, event)))
    assert seen == [("a", "start"), ("a", "done"), ("b", "start"), ("b", "done")]
