"""`portside update` and `portside rename`: change a container after create, as Docker."""

from __future__ import annotations

from typing import Any

import click

from portside.cli.batch import for_each
from portside.cli.engine import engine
from portside.errors import InvalidArgument

# -- the commands ------------------------------------------------------------------------------

def update_body(memory: str | None, memory_swap: str | None, memory_reservation: str | None,
                cpus: str | None, cpu_shares: int | None, cpu_period: int | None,
                cpu_quota: int | None, cpuset_cpus: str | None, cpuset_mems: str | None,
                pids_limit: int | None, blkio_weight: int | None,
                restart: str | None) -> dict[str, Any]:
    """Docker's update body from `docker update`'s flags (unset flags are left out)."""
    from portside.engine import options as opt

    body: dict[str, Any] = {}
    if memory is not None:
        body["Memory"] = opt.parse_bytes(memory, "memory")
    if memory_swap is not None:
        body["MemorySwap"] = -1 if memory_swap == "-1" else opt.parse_bytes(memory_swap,
                                                                           "memory-swap")
    if memory_reservation is not None:
        body["MemoryReservation"] = opt.parse_bytes(memory_reservation, "memory-reservation")
    if cpus is not None:
        body["NanoCpus"] = opt.parse_cpus(cpus)
    for key, value in (("CpuShares", cpu_shares), ("CpuPeriod", cpu_period),
                       ("CpuQuota", cpu_quota), ("PidsLimit", pids_limit),
                       ("BlkioWeight", blkio_weight), ("CpusetCpus", cpuset_cpus),
                       ("CpusetMems", cpuset_mems)):
        if value is not None:
            body[key] = value
    if restart is not None:
        body["RestartPolicy"] = opt.parse_restart(restart).to_api()
    if not body:
        raise InvalidArgument("you must provide one or more flags when using this command")
    return body


@click.command("update")
@click.option("-m", "--memory", help="Memory limit.")
@click.option("--memory-swap", help="Memory plus swap; -1 for unlimited swap.")
@click.option("--memory-reservation", help="Memory soft limit.")
@click.option("--cpus", help="Number of CPUs.")
@click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight).")
@click.option("--cpu-period", type=int, help="Limit CPU CFS period (µs).")
@click.option("--cpu-quota", type=int, help="Limit CPU CFS quota (µs).")
@click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1).")
@click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1).")
@click.option("--pids-limit", type=int, help="Tune container pids limit (-1 for unlimited).")
@click.option("--blkio-weight", type=int, help="Block IO weight, 10 to 1000 (0 disables).")
@click.option("--restart", help="Restart policy to apply when a container exits.")
@click.argument("containers", nargs=-1, required=True)
def update(memory: str | None, memory_swap: str | None, memory_reservation: str | None,
           cpus: str | None, cpu_shares: int | None, cpu_period: int | None,
           cpu_quota: int | None, cpuset_cpus: str | None, cpuset_mems: str | None,
           pids_limit: int | None, blkio_weight: int | None, restart: str | None,
           containers: tuple[str, ...]) -> None:
    """Update configuration of one or more containers (live for running ones)."""
    body = update_body(memory, memory_swap, memory_reservation, cpus, cpu_shares, cpu_period,
                       cpu_quota, cpuset_cpus, cpuset_mems, pids_limit, blkio_weight, restart)

    containers_api = engine().containers

    def one(name: str) -> None:
        for warning in containers_api.update(name, body):
            click.echo(f"WARNING: {warning}", err=True)

    for_each(containers, one)


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
def rename(container: str, new_name: str) -> None:
    """Rename a container."""
    engine().containers.rename(container, new_name)
