"""The calls of `portside run` over the daemon's socket, import-light.

`portside run` is the command whose start-up users feel (the bench holds it against bare
`crun run`), so its five calls (create, start, attach, wait, resize) live here rather than
in `remote`: this module imports only what `transport` imports, not the engine interface,
dataclasses, typing or json, and answers in plain values. It serves
`portside.engine.interface.RunCalls`, as `portside.cli.engine.run_calls` does over any
engine.
"""

from __future__ import annotations

from portside.client import wirejson as json
from portside.client.transport import Client

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from collections.abc import Callable

    from portside.engine.interface import Document, RunCalls, Stream


class RunPath:
    """`RunCalls` over the Docker Engine API of the daemon behind `client`."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()

    def create(self, body: Document, name: str = "") -> tuple[str, list[str]]:
        doc = self.client.post("/containers/create", body, name=name or None)
        return str(doc["Id"]), [str(w) for w in doc.get("Warnings") or []]

    def start(self, ref: str) -> None:
        self.client.request("POST", f"/containers/{ref}/start").read()

    def attach(self, ref: str, stdin: bool) -> tuple[Stream, bytes]:
        return self.client.hijack(f"/containers/{ref}/attach", {
            "stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else 0})

    def begin_wait(self, ref: str, condition: str) -> Callable[[], tuple[int, str]]:
        # The daemon answers the headers once the wait is registered, the body at the end.
        resp = self.client.request("POST", f"/containers/{ref}/wait", {"condition": condition})

        def result() -> tuple[int, str]:
            doc = json.loads(resp.read() or b"{}")
            return int(doc.get("StatusCode", 0)), str((doc.get("Error") or {}).get("Message")
                                                      or "")

        return result

    def resize(self, ref: str, rows: int, cols: int) -> None:
        self.client.request("POST", f"/containers/{ref}/resize", {"h": rows, "w": cols}).read()


if TYPE_CHECKING:
    def _conforms(run: RunPath) -> RunCalls:
        """Static proof (mypy) that RunPath serves `RunCalls`."""
        return run
