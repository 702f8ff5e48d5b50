"""`service logs`: every task's container log as one stream, each line with its task.

Lines carry Docker's details prefix (`com.docker.swarm.node.id=..,com.docker.swarm.
service.id=..,com.docker.swarm.task.id=..`) after the timestamp, as dockerd sends them, so
the docker client prints `name.slot.task@node | line`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from portside.engine.interface import EngineAPI, LogChunk, LogOptions
from portside.errors import PortsideError
from portside.orchestrator.records import Doc, Records


class ServiceLogs:
    def __init__(self, records: Records, engine: EngineAPI) -> None:
        self.records = records
        self.engine = engine

    def __call__(self, service_id: str, options: LogOptions) -> Iterator[LogChunk]:
        tasks = sorted((t for t in self.records.tasks(service_id)
                        if t["Status"].get("ContainerStatus", {}).get("ContainerID")),
                       key=lambda t: (t.get("Slot") or 0, t["CreatedAt"]))
        if not options.follow:
            return (c for t in tasks for c in self._task(t, options))
        return self._merged(tasks, options)

    def _task(self, task: Doc, options: LogOptions) -> Iterator[LogChunk]:
        details = (f"com.docker.swarm.node.id={task['NodeID']},"
                   f"com.docker.swarm.service.id={task['ServiceID']},"
                   f"com.docker.swarm.task.id={task['ID']} ").encode()
        cid = task["Status"]["ContainerStatus"]["ContainerID"]
        try:
            chunks = self.engine.containers.logs(cid, options)
            for chunk in chunks:
                for line in chunk.data.splitlines(keepends=True):
                    if options.timestamps:
                        stamp, _, rest = line.partition(b" ")
                        line = stamp + b" " + details + rest
                    else:
                        line = details + line
                    yield LogChunk(chunk.stream, line)
        except PortsideError:
            return  # the container went (history trimmed) while we read

    def _merged(self, tasks: list[Doc], options: LogOptions) -> Iterator[LogChunk]:
        q: queue.Queue[LogChunk | None] = queue.Queue(maxsize=1024)

        def pump(task: Doc) -> None:
            try:
                for chunk in self._task(task, options):
                    q.put(chunk)
            finally:
                q.put(None)

        for t in tasks:
            threading.Thread(target=pump, args=(t,), daemon=True).start()
        ended = 0
        while ended < len(tasks):
            item = q.get()
            if item is None:
                ended += 1
            else:
                yield item
