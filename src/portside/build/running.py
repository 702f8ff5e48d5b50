"""RUN: execute a command in a container made from the stage's current filesystem.

The command runs through `portside.runtime` when that package provides a runtime; until
then every RUN fails with a one-line error naming its Dockerfile line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from portside.build.errors import BuildError
from portside.build.instructions import Instruction
from portside.build.state import StageState
from portside.store.layers import LayerResult

if TYPE_CHECKING:
    from portside.build.executor import BuildRun

RUNTIME_MISSING = True  # set False once RUN is wired to portside.runtime
RUN_MISSING = "RUN needs the container runtime, which this build of portside does not have yet"


def plan(run: BuildRun, state: StageState, inst: Instruction, env: dict[str, str]
         ) -> tuple[str, Callable[[], LayerResult | None]]:
    raise BuildError(run.path, inst.line, RUN_MISSING)
