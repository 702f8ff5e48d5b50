"""`service update` waits for the outcome and fails on a paused or rolled-back update."""

from __future__ import annotations

import pytest

from portside.cli import servicespec, servicewait
from tests.helpers.memservices import MemServices


def _service() -> tuple[MemServices, dict]:  # type: ignore[type-arg]
    mem = MemServices()
    sid, _ = mem.create(servicespec.create_spec("web", "web:1", (), {"replicas": "2"}))
    return mem, mem.inspect(sid)


def test_a_completed_update_converges() -> None:
    mem, before = _service()
    spec = servicespec.apply(before["Spec"], {"image": "web:2"})
    mem.update("web", 1, spec)
    lines: list[str] = []
    done = servicewait.wait(mem, "web", 1, before, lines.append)
    assert done["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "web:2"
    assert lines[-1] == "overall progress: 2 out of 2 tasks (completed)"


@pytest.mark.parametrize("outcome", ["rollback_completed", "paused"])
def test_a_rolled_back_or_paused_update_fails(outcome: str) -> None:
    mem, before = _service()
    mem.outcome = outcome
    mem.update("web", 1, servicespec.apply(before["Spec"], {"image": "web:2"}))
    with pytest.raises(servicewait.UpdateFailed, match=f"service web: update "
                       f"{outcome.replace('_', ' ')}") as info:
        servicewait.wait(mem, "web", 1, before, lambda line: None)
    assert info.value.exit_code == 1


def test_an_asked_for_rollback_that_completes_succeeds() -> None:
    mem, before = _service()
    mem.update("web", 1, before["Spec"], rollback=True)
    servicewait.wait(mem, "web", 1, before, lambda line: None, rollback=True)
