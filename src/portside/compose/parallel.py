"""Run an action over services in dependency order, independent ones in parallel.

`run_ordered(graph, action)`: `graph` maps each node to the nodes it depends on. A node's
action starts once every node it depends on has finished successfully (with
`reverse=True`, once every node that depends on it has finished: the order for stopping).
When an action raises, the nodes that (transitively) wait on it are not run. The result
maps each node that did not complete to what stopped it: the exception its action
raised, or a `Skipped` naming the failed node it waited on. Each action runs in a worker
thread; `on_event(node, event, error)` is called from the workers with event "start",
"done", "error" or "skipped".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from portside.errors import PortsideError


class Skipped(PortsideError):
    def __init__(self, node: str, because: str) -> None:
        super().__init__(f"{node}: not run because {because} failed")
        self.node, self.because = node, because


Event = Callable[[str, str, BaseException | None], None]


def run_ordered(graph: Mapping[str, set[str]], action: Callable[[str], None],
                reverse: bool = False, workers: int = 8,
                on_event: Event | None = None) -> dict[str, BaseException]:
    nodes = set(graph)
    waits: dict[str, set[str]] = {n: set() for n in nodes}
    for node, deps in graph.items():
        for dep in deps:
            if dep not in nodes:
                continue
            if reverse:
                waits[dep].add(node)
            else:
                waits[node].add(dep)
    done: set[str] = set()
    failed: dict[str, BaseException] = {}
    lock = threading.Lock()
    notify = on_event or (lambda node, event, error: None)

    def task(node: str) -> None:
        notify(node, "start", None)
        action(node)

    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while True:
            with lock:
                for node in sorted(nodes - done - set(failed) - set(running.values())):
                    blocking = waits[node] & set(failed)
                    if blocking:
                        because = sorted(blocking)[0]
                        failed[node] = Skipped(node, because)
                        notify(node, "skipped", failed[node])
                    elif waits[node] <= done:
                        running[pool.submit(task, node)] = node
            if not running:
                if nodes - done - set(failed):  # only possible with a cycle
                    for node in sorted(nodes - done - set(failed)):
                        failed[node] = Skipped(node, "a dependency cycle")
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                node = running.pop(future)
                error = future.exception()
                if error is None:
                    done.add(node)
                    notify(node, "done", None)
                else:
                    failed[node] = error
                    notify(node, "error", error)
    return failed
