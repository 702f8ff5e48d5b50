"""The hot path of `portside run`, without click.

Imported by `portside.cli.main` before click: when the process is the `portside` command
and its first argument is `run`, the arguments are read with the flag table of `runspec`
and the container runs through `runcore`, then the process exits with its status. Anything
the table parser does not take (`--help`, a bad or unknown flag, no image) falls through to
click, which handles it as before. Importing this module anywhere else does nothing.
"""

from __future__ import annotations

import sys


def _is_the_command() -> bool:
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 == "portside" or argv0.endswith(("/portside", "/portside/__main__.py"))


def main(args: list[str]) -> None:
    """Run `portside run <args>` and exit, or return when click should handle it."""
    from portside.cli.runspec import parse_run

    parsed = parse_run(args)
    if parsed is None:
        return
    kw, image, command = parsed
    from portside.cli.runcore import run_container
    from portside.errors import PortsideError

    try:
        code = run_container(bool(kw.pop("detach")), image, command, kw)
    except PortsideError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 141
    # Nothing is left to clean up: skip the interpreter's teardown (module GC costs more
    # than the container run itself here).
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            code = code or 141
    os._exit(code)


if sys.argv[1:2] == ["run"] and _is_the_command():
    main(sys.argv[2:])
