"""The engine built from its parts, in managed mode: exits are reported, never restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helpers.busybox import busybox_image

from portside.engine.assembly import build_engine
from portside.engine.monitor import TaskExit
from portside.store.images import ImageStore


def test_an_exit_is_reported_and_the_restart_policy_left_to_the_caller(
        root: Path, store: ImageStore) -> None:
    busybox_image(store)
    reported: list[TaskExit] = []

    async def scenario() -> None:
        got = asyncio.Event()

        def report(exit_: TaskExit) -> None:
            reported.append(exit_)
            got.set()

        engine = build_engine(root, "runc", exits=report)
        engine.events.loop = asyncio.get_running_loop()
        try:
            c = engine.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"],
                               "Labels": {"task": "web.1"},
                               "HostConfig": {"RestartPolicy": {"Name": "always"},
                                              "NetworkMode": "none"}}, name="managed")
            await engine.start(c.id)
            await asyncio.wait_for(got.wait(), 30)
            await asyncio.sleep(0.5)  # a restart would be under way by now (backoff 100 ms)
            after = engine.get(c.id)
            assert after.state["Status"] == "exited" and not after.state["Restarting"]
            assert after.restart_count == 0
            await engine.remove(c.id, force=True)
        finally:
            engine.monitor.close()
            engine.runtime.close()
            await asyncio.to_thread(engine.networks.close)
            engine.state.close()

    asyncio.run(scenario())
    assert [(e.name, e.exit_code, e.labels["task"]) for e in reported] == [("managed", 3, "web.1")]


def test_managed_per_container_only_labelled_ones_report(root: Path, store: ImageStore) -> None:
    """With `managed_label` set (the orchestrator's task label), task containers report and
    keep no restart policy; ordinary containers keep theirs."""
    busybox_image(store)
    reported: list[TaskExit] = []

    async def scenario() -> None:
        got = asyncio.Event()

        def report(exit_: TaskExit) -> None:
            reported.append(exit_)
            got.set()

        engine = build_engine(root, "runc", exits=report)
        engine.managed_label = "com.docker.swarm.task.id"
        engine.events.loop = asyncio.get_running_loop()
        body = {"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"],
                "HostConfig": {"RestartPolicy": {"Name": "always"}, "NetworkMode": "none"}}
        try:
            task = engine.create({**body, "Labels": {"com.docker.swarm.task.id": "t1"}},
                                 name="task")
            plain = engine.create(body, name="plain")
            await engine.start(task.id)
            await engine.start(plain.id)
            await asyncio.wait_for(got.wait(), 30)
            for _ in range(300):  # the ordinary container's policy restarts it
                if engine.get(plain.id).restart_count >= 1:
                    break
                await asyncio.sleep(0.1)
            assert engine.get(plain.id).restart_count >= 1
            after = engine.get(task.id)
            assert after.state["Status"] == "exited" and after.restart_count == 0
            await engine.remove(task.id, force=True)
            await engine.remove(plain.id, force=True)
        finally:
            engine.monitor.close()
            engine.runtime.close()
            await asyncio.to_thread(engine.networks.close)
            engine.state.close()

    asyncio.run(scenario())
    assert [e.name for e in reported] == ["task"]
