"""Run a project on the daemon: `up` converges it, `down` removes what `up` made.

Everything goes through the engine interface (`portside.engine.interface.EngineAPI`: the
daemon's `RemoteEngine`, or any other engine), as Docker Compose goes through the Docker
Engine API: project objects are found by their `com.docker.compose.*` labels, never by
name patterns alone.

`up` creates the networks and volumes, writes secrets to a tmpfs, then converges the
services in dependency order (independent ones in parallel, `parallel.run_ordered`): a
service first waits on its dependencies' conditions (service_started, service_healthy,
service_completed_successfully), then for each replica 1..n keeps a container whose
config-hash label and image still match, recreates one that differs, creates the missing
ones and removes the extra ones. `down` stops in reverse order and removes the
containers, the networks, the secrets tmpfs and (with -v) the volumes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from portside.compose import containerspec, naming, resources, secretsdir
from portside.compose.model import Project, Service
from portside.compose.parallel import Skipped, run_ordered
from portside.engine.interface import ContainerSummary, CreateOptions, EngineAPI
from portside.errors import Conflict, NotFound, PortsideError

POLL = 0.2


class DependencyFailed(PortsideError):
    exit_code = 1


def number_of(c: ContainerSummary) -> int:
    try:
        return int(c.labels.get(naming.NUMBER, "0"))
    except ValueError:
        return 0


def name_of(c: ContainerSummary) -> str:
    return c.name


def run_all(tasks: list[Callable[[], Any]]) -> None:
    """Run independent tasks at once; raise the first error once all have ended."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
    for future in futures:
        future.result()


def _grace(svc: Service) -> int | None:
    return int(svc.stop_grace_period) if svc.stop_grace_period is not None else None


class Compose:
    """One loaded project and the engine it runs on."""

    def __init__(self, project: Project, engine: EngineAPI,
                 say: Callable[[str], None] = lambda m: None) -> None:
        self.project, self.engine, self.say = project, engine, say
        self.recreated: set[str] = set()
        self.image_ids: dict[str, str] = {}

    # -- finding the project's objects --

    def containers(self, service: str | None = None, stopped: bool = True,
                   oneoff: bool | None = False) -> list[ContainerSummary]:
        labels = [f"{naming.PROJECT}={self.project.name}"]
        if service:
            labels.append(f"{naming.SERVICE}={service}")
        if oneoff is not None:
            labels.append(f"{naming.ONEOFF}={'True' if oneoff else 'False'}")
        found = self.engine.containers.list(all=stopped, filters={"label": labels})
        return sorted(found, key=lambda c: (c.labels.get(naming.SERVICE, ""), number_of(c)))

    def graph(self, services: Iterable[Service]) -> dict[str, set[str]]:
        """Each service and the services (among these) it needs started first."""
        services = list(services)
        names = {s.name for s in services}
        out: dict[str, set[str]] = {}
        for s in services:
            deps = {d for d in s.depends_on if d in names}
            mode = s.network_mode or ""
            if mode.startswith("service:") and mode[8:] in names:
                deps.add(mode[8:])
            out[s.name] = deps
        return out

    def selected(self, names: Iterable[str] = ()) -> list[Service]:
        """The named services (default: all enabled), plus the enabled services they
        depend on (a named service is used even when its profiles are off)."""
        wanted = list(names) or list(self.project.services)
        out: dict[str, Service] = {}
        while wanted:
            svc = self.project.service(wanted.pop())
            if svc.name not in out:
                out[svc.name] = svc
                wanted.extend(d for d in svc.depends_on if d in self.project.services)
        return [s for n, s in self.project.services.items() if n in out] + \
            [s for n, s in out.items() if n not in self.project.services]

    def image_id(self, ref: str) -> str | None:
        try:
            return str(self.engine.images.inspect(ref)["Id"])
        except NotFound:
            return None

    # -- networks and volumes (resources.py) --

    def ensure_networks(self, services: Iterable[Service]) -> None:
        resources.ensure_networks(self.engine, self.project, services, self.say)

    def ensure_volumes(self, services: Iterable[Service]) -> None:
        resources.ensure_volumes(self.engine, self.project, services, self.say)

    # -- up --

    def up(self, names: Iterable[str] = (), scale: dict[str, int] | None = None,
           remove_orphans: bool = False, force_recreate: bool = False,
           no_recreate: bool = False, wait: bool = False, wait_timeout: float | None = None,
           start: bool = True) -> None:
        services = self.selected(names)
        scale = scale or {}
        for name in scale:
            self.project.service(name)
        self.orphans(remove_orphans)
        for s in services:
            ref = naming.image_name(self.project, s)
            image = self.image_id(ref)
            if image is None:
                raise NotFound(f"service \"{s.name}\": image \"{ref}\" not found; build it"
                               " (--build) or pull it")
            self.image_ids[s.name] = image
        self.ensure_networks(services)
        self.ensure_volumes(services)
        secrets = secretsdir.prepare(self.project, services)

        def converge(name: str) -> None:
            svc = self.project.service(name)
            self.wait_dependencies(svc)
            self.converge(svc, scale.get(name, svc.replicas), secrets, force_recreate,
                          no_recreate, start)

        failed = run_ordered(self.graph(services), converge)
        self.raise_first(failed)
        if wait:
            self.wait_ready(services, wait_timeout)

    def raise_first(self, failed: dict[str, BaseException]) -> None:
        real = {n: e for n, e in failed.items() if not isinstance(e, Skipped)}
        for name, error in sorted(real.items()):
            if isinstance(error, PortsideError):
                raise error
            raise DependencyFailed(f"service \"{name}\": {error}") from error

    def orphans(self, remove: bool) -> None:
        known = set(self.project.services) | set(self.project.disabled)
        stray = [c for c in self.containers() if c.labels.get(naming.SERVICE) not in known]
        if stray and not remove:
            self.say("WARN: found orphan containers (" + ", ".join(name_of(c) for c in stray)
                     + ") for this project; use --remove-orphans to clean them up")
        for c in stray if remove else []:
            self.remove(c)

    def wait_dependencies(self, svc: Service) -> None:
        for dep, spec in svc.depends_on.items():
            if dep not in self.project.services:
                continue  # disabled and not required
            try:
                self.wait_condition(dep, spec.condition)
            except DependencyFailed:
                if spec.required:
                    raise
                self.say(f"WARN: optional dependency {dep} of {svc.name} failed")
            if spec.restart and dep in self.recreated and svc.name not in self.recreated:
                for c in self.containers(svc.name):
                    self.engine.containers.restart(c.id)
                    self.say(f"Container {name_of(c)}  Restarted")

    def wait_condition(self, service: str, condition: str) -> None:
        if condition == "service_started":
            return
        for c in self.containers(service):
            name = name_of(c)
            if condition == "service_completed_successfully":
                code = self.engine.containers.wait(c.id, condition="not-running").status_code
                if code != 0:
                    raise DependencyFailed(f"service \"{service}\" didn't complete"
                                           f" successfully: {name} exited with {code}")
                continue
            while True:  # service_healthy
                state = self.engine.containers.state(c.id)
                if not state.health:
                    raise DependencyFailed(f"dependency {name} has no healthcheck")
                if state.health == "healthy":
                    self.say(f"Container {name}  Healthy")
                    break
                if state.health == "unhealthy" or not state.running:
                    raise DependencyFailed(f"dependency failed to start: container {name}"
                                           " is unhealthy")
                time.sleep(POLL)

    def converge(self, svc: Service, replicas: int, secrets: Path | None, force: bool,
                 no_recreate: bool, start: bool) -> None:
        """Bring the service's replicas 1..replicas up to date (all replicas at once)."""
        digest = svc.config_hash()
        image = self.image_ids.get(svc.name)
        tasks: list[Callable[[], Any]] = []
        numbers = set()
        for c in self.containers(svc.name):
            n = number_of(c)
            if n > replicas or n in numbers:
                tasks.append(partial(self.remove, c))
                continue
            numbers.add(n)
            stale = c.labels.get(naming.CONFIG_HASH) != digest or (
                image is not None and c.image_id not in ("", image))
            if (stale or force) and not no_recreate:
                tasks.append(partial(self.recreate, svc, c, n, secrets, start))
            elif start and c.state != "running":
                tasks.append(partial(self.start_container, c))
            else:
                self.say(f"Container {name_of(c)}  Running")
        for n in range(1, replicas + 1):
            if n not in numbers:
                tasks.append(partial(self.create, svc, n, secrets, start,
                                     "Started" if start else "Created"))
        run_all(tasks)

    def recreate(self, svc: Service, c: ContainerSummary, number: int, secrets: Path | None,
                 start: bool) -> None:
        self.remove(c, quiet=True, timeout=_grace(svc))
        self.create(svc, number, secrets, start, "Recreated")
        self.recreated.add(svc.name)

    def start_container(self, c: ContainerSummary) -> None:
        self.engine.containers.start(c.id)
        self.say(f"Container {name_of(c)}  Started")

    def create(self, svc: Service, number: int, secrets: Path | None, start: bool, verb: str) -> str:
        ref = naming.image_name(self.project, svc)
        peers = {}
        if (svc.network_mode or "").startswith("service:"):
            target = svc.network_mode[8:]  # type: ignore[index]
            running = self.containers(target, stopped=False)
            if not running:
                raise DependencyFailed(f"service \"{svc.name}\" shares the network of"
                                       f" \"{target}\", which has no running container")
            peers[target] = running[0].id
        body = containerspec.create_body(self.project, svc, number, ref, secrets, peers,
                                         image_id=self.image_ids.get(svc.name, ""))
        name = naming.container_name(self.project, svc, number)
        cid = self.engine.containers.create(CreateOptions(body=body, name=name)).id
        try:
            if start:
                self.engine.containers.start(cid)
        except PortsideError:
            with contextlib.suppress(PortsideError):
                self.engine.containers.remove(cid, force=True)
            raise
        self.say(f"Container {name}  {verb}")
        return cid

    def remove(self, c: ContainerSummary, volumes: bool = False, quiet: bool = False,
               timeout: int | None = None) -> None:
        with contextlib.suppress(NotFound, Conflict):
            if c.state in ("running", "restarting", "paused"):
                self.engine.containers.stop(c.id, timeout)
        with contextlib.suppress(NotFound):
            self.engine.containers.remove(c.id, force=True, volumes=volumes)
        if not quiet:
            self.say(f"Container {name_of(c)}  Removed")

    def wait_ready(self, services: list[Service], timeout: float | None) -> None:
        """--wait: every container running (and healthy when it has a healthcheck)."""
        deadline = time.monotonic() + timeout if timeout else None
        completes = {d for s in services for d, spec in s.depends_on.items()
                     if spec.condition == "service_completed_successfully"}
        for svc in services:
            for c in self.containers(svc.name):
                while True:
                    state = self.engine.containers.state(c.id)
                    if svc.name in completes and not state.running and state.exit_code == 0:
                        break
                    if not state.running:
                        raise DependencyFailed(f"container {name_of(c)} exited"
                                               f" ({state.exit_code})")
                    if state.health in ("", "healthy"):
                        break
                    if state.health == "unhealthy":
                        raise DependencyFailed(f"container {name_of(c)} is unhealthy")
                    if deadline is not None and time.monotonic() > deadline:
                        raise DependencyFailed(f"timed out waiting for {name_of(c)}")
                    time.sleep(POLL)

    # -- down, stop, start, restart --

    def down(self, volumes: bool = False, remove_orphans: bool = False,
             timeout: int | None = None) -> None:
        known = set(self.project.services) | set(self.project.disabled)
        every = self.containers(oneoff=None)
        by_service: dict[str, list[ContainerSummary]] = {}
        for c in every:
            svc = c.labels.get(naming.SERVICE, "")
            if svc in known or remove_orphans:
                by_service.setdefault(svc, []).append(c)
        services = [self.project.service(n) for n in by_service if n in known]
        graph = {**self.graph(services), **{n: set() for n in by_service if n not in known}}
        failed = run_ordered(graph, lambda n: run_all([
            partial(self.remove, c, volumes, timeout=timeout) for c in by_service[n]]),
            reverse=True)
        self.raise_first(failed)
        resources.remove_networks(self.engine, self.project, self.say)
        if volumes:
            resources.remove_volumes(self.engine, self.project, self.say)
        secretsdir.remove(self.project)

    def stop(self, names: Iterable[str] = (), timeout: int | None = None) -> None:
        services = [self.project.service(n) for n in names] or list(
            self.project.services.values())
        chosen = {s.name for s in services}

        def stop_one(name: str) -> None:
            run_all([partial(self.stop_container, c, timeout)
                     for c in self.containers(name, stopped=False)])

        self.raise_first(run_ordered({n: d & chosen for n, d in self.graph(services).items()},
                                     stop_one, reverse=True))

    def stop_container(self, c: ContainerSummary, timeout: int | None) -> None:
        self.engine.containers.stop(c.id, timeout)
        self.say(f"Container {name_of(c)}  Stopped")

    def start(self, names: Iterable[str] = ()) -> None:
        services = self.selected(names)

        def start_one(name: str) -> None:
            svc = self.project.service(name)
            self.wait_dependencies(svc)
            found = self.containers(name)
            if not found:
                raise NotFound(f"service \"{name}\" has no container to start")
            for c in found:
                if c.state != "running":
                    self.engine.containers.start(c.id)
                    self.say(f"Container {name_of(c)}  Started")

        self.raise_first(run_ordered(self.graph(services), start_one))

    def restart(self, names: Iterable[str] = (), timeout: int | None = None) -> None:
        services = [self.project.service(n) for n in names] or list(
            self.project.services.values())

        def restart_one(name: str) -> None:
            for c in self.containers(name):
                self.engine.containers.restart(c.id, timeout)
                self.say(f"Container {name_of(c)}  Restarted")

        self.raise_first(run_ordered(self.graph(services), restart_one))

    # -- run --

    def one_off(self, svc: Service, command: list[str] | None, name: str | None = None,
                env: list[str] | None = None, entrypoint: str | None = None,
                auto_remove: bool = False, tty: bool = False) -> str:
        """Create (not start) a one-off container of `svc` for `compose run`."""
        import secrets as random

        ref = naming.image_name(self.project, svc)
        if self.image_id(ref) is None:
            raise NotFound(f"service \"{svc.name}\": image \"{ref}\" not found")
        self.ensure_networks([svc])
        self.ensure_volumes([svc])
        secrets = secretsdir.prepare(self.project, [svc])
        name = name or f"{self.project.name}-{svc.name}-run-{random.token_hex(6)}"
        body = containerspec.create_body(self.project, svc, 1, ref, secrets, oneoff=True,
                                         command=command, name=name)
        body["HostConfig"]["PortBindings"] = {}  # `run` publishes no ports (as Compose)
        body["HostConfig"]["AutoRemove"] = auto_remove
        body["HostConfig"]["RestartPolicy"] = {"Name": "no"}
        body["Env"] = [*body["Env"], *(env or [])]
        body.update(Tty=tty, OpenStdin=True, AttachStdin=True, AttachStdout=True,
                    AttachStderr=True, StdinOnce=True)
        if entrypoint is not None:
            import shlex

            body["Entrypoint"] = shlex.split(entrypoint)
        return self.engine.containers.create(CreateOptions(body=body, name=name)).id
