"""`compose logs` / attached `up`: the services' logs, each line prefixed with its
container (`web-1  | ...`), several containers followed at once (one thread each)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import IO

from portside.compose import naming
from portside.compose.orchestrate import Compose
from portside.engine.interface import ContainerSummary, LogChunk, LogOptions

COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


class _Lines:
    """Write complete lines of one stream of one container, prefixed, under a shared lock."""

    def __init__(self, prefix: bytes, out: IO[bytes], lock: threading.Lock) -> None:
        self.prefix, self.out, self.lock, self.buf = prefix, out, lock, b""

    def write(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        if lines:
            with self.lock:
                for line in lines:
                    self.out.write(self.prefix + line + b"\n")
                self.out.flush()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.buf:
            self.write(b"\n")


def follow(runner: Compose, services: list[str], follow_: bool = False, tail: str = "all",
           timestamps: bool = False, prefix: bool = True, until_exit: bool = False) -> None:
    """Print the logs of the services' containers; with `follow_`, until they all end."""
    api = runner.engine.containers
    options = LogOptions(follow=follow_, tail=tail, timestamps=timestamps)
    containers = [c for s in services for c in runner.containers(s)]
    width = max([len(_short(runner, c)) for c in containers] or [0])
    colour = sys.stdout.isatty()
    lock = threading.Lock()
    threads = []
    for i, c in enumerate(containers):
        label = _short(runner, c).ljust(width) + "  | "
        if colour:
            label = f"\x1b[{COLOURS[i % len(COLOURS)]}m{label}\x1b[0m"
        head = label.encode() if prefix else b""
        out = _Lines(head, sys.stdout.buffer, lock)
        err = _Lines(head, sys.stdout.buffer, lock)
        chunks = api.logs(c.id, options)  # asked for here: an error stops the command

        def pump(chunks: Iterator[LogChunk] = chunks, out: _Lines = out, err: _Lines = err,
                 c: ContainerSummary = c) -> None:
            for chunk in chunks:
                (err if chunk.stream == 2 else out).write(chunk.data)
            out.close()
            err.close()
            if until_exit:  # as `docker compose up` reports a container that ended
                state = api.state(c.id)
                if not state.running:
                    with lock:
                        sys.stdout.write(f"{_short(runner, c)} exited with code"
                                         f" {state.exit_code}\n")
                        sys.stdout.flush()

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        while t.is_alive():
            t.join(0.5)


def _short(runner: Compose, c: ContainerSummary) -> str:
    """`web-1` for `<project>-web-1`; a custom container name as it is."""
    name = c.name
    svc = c.labels.get(naming.SERVICE, "")
    number = c.labels.get(naming.NUMBER, "")
    if name == f"{runner.project.name}-{svc}-{number}":
        return f"{svc}-{number}"
    return name
