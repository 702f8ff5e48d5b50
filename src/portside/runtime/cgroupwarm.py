"""Keep the kernel's cgroup-migration lock on its fast path while a container is created.

On cgroup v1 the runtime puts the container's init into its cgroups by writing to
`cgroup.procs`, and every such write takes the kernel's global
`cgroup_threadgroup_rwsem` for writing. After a quiet moment that costs a full RCU grace
period (8-25 ms on these machines), once per container; while writes keep coming, the
kernel leaves the lock in its writer mode and later writes pass at once. So, while
`create` runs, a thread re-writes our own pid into the cgroup we are already in (a move
to where we are: nothing changes) every 5 ms, paying that grace period in parallel with
mounting, writing the bundle and starting conmon instead of inside `crun create`. (The
lock leaves writer mode only a grace period after the last writer, so 5 ms apart is
close enough; more often, the thread fights the create for the GIL.)

Not needed on a pure cgroup v2 host, where crun forks straight into the container's
cgroup (`clone3(CLONE_INTO_CGROUP)`) and takes that lock only for reading.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from portside.runtime.cgroups import Layout

_INTERVAL = 0.005


def own_procs_file(layout: Layout) -> str | None:
    """`cgroup.procs` of the cgroup this process is in, on one v1 hierarchy."""
    if not layout.v1:
        return None
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            name = name.removeprefix("name=")
            if name in layout.v1:
                return f"{layout.v1[name]}{path.rstrip('/')}/cgroup.procs"
    return None


@contextlib.contextmanager
def migrations_kept_fast(layout: Layout) -> Iterator[None]:
    """While the block runs, keep cgroup v1 migrations free of the grace-period wait."""
    procs = own_procs_file(layout)
    if procs is None:
        yield
        return
    stop = threading.Event()
    pid = str(os.getpid()).encode()

    def keep() -> None:
        while True:
            try:
                fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            except OSError:
                return  # not allowed here (a delegated or read-only cgroupfs): no harm
            if stop.wait(_INTERVAL):
                return

    thread = threading.Thread(target=keep, name="cgroup-warm", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
