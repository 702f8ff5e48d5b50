"""Secrets through the daemon, as a user meets them: `portside secret ...`, then
`run --secret` giving the value on a read-only tmpfs at /run/secrets, and nowhere else
(env, inspect, logs, diff, commit, export, the host's mounts, the daemon's log)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from helpers.daemon import PortsideDaemon

VALUE = "s3cr3t-Value-never-leaks"


def _host_mounts(under: Path, what: str = "/secretfs/") -> list[str]:
    """The host's secrets tmpfs mounts under a root (the container's rootfs overlay is
    there too while it runs; the private base `secretfs` while the daemon runs)."""
    return [line for line in Path("/proc/mounts").read_text().splitlines()
            if str(under) in line and what in line]


def test_secret_commands(daemon: PortsideDaemon, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text(VALUE)
    sid = daemon.cli("secret", "create", "--label", "team=shop", "se-db", str(pw)).stdout.strip()
    assert len(sid) == 25
    assert daemon.cli("secret", "create", "se-stdin", "-", input=VALUE).stdout.strip()
    rows = [json.loads(line) for line in
            daemon.cli("secret", "ls", "--format", "json").stdout.splitlines()]
    assert [(r["Name"], r["Labels"]) for r in rows] == [("se-db", {"team": "shop"}),
                                                       ("se-stdin", {})]
    assert daemon.cli("secret", "ls", "-q", "-f", "label=team").stdout.split() == [sid]
    table = daemon.cli("secret", "ls").stdout
    assert table.splitlines()[0].split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
    doc = json.loads(daemon.cli("secret", "inspect", "se-db").stdout)[0]
    assert doc["ID"] == sid and doc["Spec"]["Name"] == "se-db"
    # bad input: one line, non-zero, nothing half-made
    r = daemon.cli("secret", "create", "se-db", str(pw), check=False)
    assert r.returncode != 0 and r.stderr.strip() == "Error: secret 'se-db' already exists"
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024 + 1))
    r = daemon.cli("secret", "create", "se-big", str(big), check=False)
    assert r.returncode != 0 and "too large" in r.stderr and len(r.stderr.splitlines()) == 1
    r = daemon.cli("secret", "create", "bad/name", str(pw), check=False)
    assert r.returncode != 0 and "invalid secret name" in r.stderr
    r = daemon.cli("secret", "inspect", "se-nope", check=False)
    assert r.returncode != 0 and "secret 'se-nope' not found" in r.stderr
    assert daemon.cli("secret", "rm", "se-db", "se-stdin").stdout.split() == ["se-db", "se-stdin"]
    assert daemon.cli("secret", "ls", "-q").stdout == ""
    events = [json.loads(line) for line in daemon.cli(
        "events", "--format", "json", "--since", "0", "--until", "0s",
        "--filter", "type=secret").stdout.splitlines()]
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in events] == [
        ("create", "se-db"), ("create", "se-stdin"), ("remove", "se-db"), ("remove", "se-stdin")]
    assert events[0]["Actor"]["ID"] == sid
    for text in (daemon.log(), (daemon.root / "state.db").read_bytes().decode("latin-1")):
        assert VALUE not in text


def test_run_with_a_secret(daemon: PortsideDaemon, tmp_path: Path) -> None:
    daemon.cli("secret", "create", "se-pw", "-", input=VALUE)
    r = daemon.cli("run", "--rm", "--secret", "se-pw",
                   "--secret", "se-pw,target=app.pw,uid=1000,gid=1001,mode=0400", "busybox",
                   "sh", "-c", "cat /run/secrets/se-pw; echo; stat -c '%a %u %g' "
                   "/run/secrets/se-pw /run/secrets/app.pw; cat /run/secrets/app.pw; echo;"
                   " echo x > /run/secrets/se-pw || echo read-only; env")
    lines = r.stdout.splitlines()
    assert lines[:4] == [VALUE, "444 0 0", "400 1000 1001", VALUE]
    assert "read-only" in lines
    assert VALUE not in "\n".join(lines[5:])  # not in the environment

    # a kept container: the value in none of inspect, logs, diff, commit, export
    daemon.cli("run", "-d", "--name", "se-keep", "--secret", "se-pw", "busybox", "sh", "-c",
               "test -s /run/secrets/se-pw && echo present; touch /made; sleep 600")
    daemon.wait_for(lambda: "present" in daemon.cli("logs", "se-keep").stdout, what="start")
    inspect = daemon.cli("inspect", "se-keep").stdout
    assert VALUE not in inspect
    assert json.loads(inspect)[0]["HostConfig"]["PortsideSecrets"][0]["SecretName"] == "se-pw"
    diff = daemon.cli("diff", "se-keep").stdout.splitlines()
    assert "A /made" in diff and not any("se-pw" in line for line in diff)
    daemon.cli("commit", "se-keep", "se-committed:1")
    saved = tmp_path / "img.tar"
    daemon.cli("save", "-o", str(saved), "se-committed:1")
    assert VALUE.encode() not in _tar_bytes(saved)
    exported = tmp_path / "fs.tar"
    daemon.cli("export", "-o", str(exported), "se-keep")
    assert VALUE.encode() not in _tar_bytes(exported)
    assert _host_mounts(daemon.root) == []  # the host holds no tmpfs of it
    daemon.cli("restart", "-t", "0", "se-keep")  # written again at each start
    assert daemon.cli("exec", "se-keep", "cat", "/run/secrets/se-pw").stdout == VALUE
    daemon.cli("rm", "-f", "se-keep")
    assert _host_mounts(daemon.root) == []
    logs = daemon.log()
    assert VALUE not in logs
    events = daemon.cli("events", "--format", "json", "--until", "0s").stdout
    assert VALUE not in events

    r = daemon.cli("run", "--rm", "--secret", "se-missing", "busybox", "true", check=False)
    assert r.returncode != 0 and r.stderr.strip() == "Error: secret 'se-missing' not found"
    r = daemon.cli("run", "--rm", "--secret", "se-pw,target=../x", "busybox", "true",
                   check=False)
    assert r.returncode != 0 and "must be a file name in /run/secrets" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""
    daemon.stop()
    assert _host_mounts(daemon.root, "/secretfs") == []  # the daemon's stop detaches the base


def _tar_bytes(path: Path) -> bytes:
    """Every member's content of a tar, nested tars (image layers) opened too."""
    out = bytearray()
    with tarfile.open(path) as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isfile() else None
            if f is None:
                continue
            data = f.read()
            out += data
            if member.name.endswith(".tar") or "blobs/" in member.name:
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                        for m in inner:
                            g = inner.extractfile(m) if m.isfile() else None
                            if g is not None:
                                out += g.read()
                except tarfile.TarError:
                    pass
    return bytes(out)


def test_docker_client_secrets_and_configs(daemon: PortsideDaemon, tmp_path: Path) -> None:
    """The docker CLI's own `secret` and `config` commands, without `docker swarm init`."""
    sid = daemon.docker("secret", "create", "-l", "env=prod", "se-dk", "-",
                        input=VALUE).stdout.strip()
    ls = daemon.docker("secret", "ls", "--format", "{{.ID}} {{.Name}}").stdout.split()
    assert ls == [sid, "se-dk"]
    doc = json.loads(daemon.docker("secret", "inspect", "se-dk").stdout)[0]
    assert doc["Spec"] == {"Name": "se-dk", "Labels": {"env": "prod"}}
    assert VALUE not in json.dumps(doc)
    r = daemon.docker("secret", "create", "se-dk", "-", input=VALUE, check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    assert daemon.docker("secret", "ls", "-q", "--filter", "label=env=dev").stdout == ""
    daemon.docker("secret", "rm", "se-dk")
    assert daemon.docker("secret", "ls", "-q").stdout == ""

    conf = tmp_path / "app.conf"
    conf.write_text("listen 80\n")
    daemon.docker("config", "create", "se-conf", str(conf))
    cdoc = json.loads(daemon.docker("config", "inspect", "se-conf").stdout)[0]
    assert cdoc["Spec"]["Data"] == "bGlzdGVuIDgwCg=="  # configs are not secret (as Docker)
    assert daemon.docker("config", "ls", "--format", "{{.Name}}").stdout.split() == ["se-conf"]
    daemon.docker("config", "rm", "se-conf")
    r = daemon.docker("config", "inspect", "se-conf", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


def test_docker_py_secrets_and_configs(daemon: PortsideDaemon) -> None:
    import docker
    from docker.errors import APIError, NotFound

    client = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=60)
    try:
        s = client.secrets.create(name="se-py", data=VALUE, labels={"a": "b"})
        got = client.secrets.get(s.id)
        assert got.name == "se-py" and got.attrs["Spec"]["Labels"] == {"a": "b"}
        assert [x.id for x in client.secrets.list(filters={"name": "se-py"})] == [s.id]
        try:
            client.secrets.create(name="se-py", data=VALUE)
        except APIError as exc:
            assert exc.status_code == 409
        else:
            raise AssertionError("a name in use was accepted")
        # update the labels with the version, as docker-py's low-level API does
        version = got.attrs["Version"]["Index"]
        client.api._post_json(client.api._url("/secrets/{0}/update", s.id),
                              data={"Name": "se-py", "Labels": {"a": "c"}},
                              params={"version": version}).raise_for_status()
        assert client.secrets.get(s.id).attrs["Spec"]["Labels"] == {"a": "c"}
        stale = client.api._post_json(client.api._url("/secrets/{0}/update", s.id),
                                      data={"Name": "se-py", "Labels": {}},
                                      params={"version": version})
        assert stale.status_code == 409
        s.remove()
        try:
            client.secrets.get("se-py")
        except NotFound:
            pass
        else:
            raise AssertionError("a removed secret was found")
        c = client.configs.create(name="se-pyconf", data="k=v", labels={})
        assert client.configs.get("se-pyconf").id == c.id
        c.remove()
        assert client.configs.list() == []
    finally:
        client.close()


def test_docker_api_create_body(daemon: PortsideDaemon) -> None:
    """The create body's `HostConfig.PortsideSecrets` (Docker's SecretReference), sent by
    docker-py's low-level API as any Docker API client would."""
    import docker
    from docker.errors import APIError

    client = docker.APIClient(base_url="unix://" + str(daemon.socket), timeout=60)
    try:
        sid = client.create_secret("se-api", VALUE.encode())["ID"]
        host = client.create_host_config()
        host["PortsideSecrets"] = [{"SecretID": sid, "File": {"Name": "token", "UID": "5",
                                                              "GID": "6", "Mode": 0o440}}]
        c = client.create_container("busybox", ["sh", "-c", "stat -c '%a %u %g' "
                                                "/run/secrets/token; cat /run/secrets/token"],
                                    host_config=host)
        client.start(c["Id"])
        assert client.wait(c["Id"])["StatusCode"] == 0
        assert client.logs(c["Id"]).decode() == "440 5 6\n" + VALUE
        refs = client.inspect_container(c["Id"])["HostConfig"]["PortsideSecrets"]
        assert refs == [{"SecretID": sid, "SecretName": "se-api",
                         "File": {"Name": "token", "UID": "5", "GID": "6", "Mode": 0o440}}]
        client.remove_container(c["Id"])
        host["PortsideSecrets"] = [{"SecretName": "se-nothing"}]
        try:
            client.create_container("busybox", ["true"], host_config=host)
        except APIError as exc:
            assert exc.status_code == 404 and "se-nothing" in str(exc.explanation)
        else:
            raise AssertionError("an unknown secret was accepted")
    finally:
        client.close()


def test_secrets_survive_a_daemon_restart(daemon: PortsideDaemon) -> None:
    """Live-restore: a running container keeps its /run/secrets while no daemon runs (its
    namespace holds the tmpfs); the next daemon opens the same store with the same key."""
    daemon.cli("secret", "create", "se-live", "-", input=VALUE)
    daemon.cli("run", "-d", "--name", "se-lr", "--secret", "se-live", "busybox",
               "sleep", "600")
    daemon.stop()
    assert _host_mounts(daemon.root, "/secretfs") == []
    daemon.start()
    assert daemon.cli("exec", "se-lr", "cat", "/run/secrets/se-live").stdout == VALUE
    daemon.cli("restart", "-t", "0", "se-lr")  # written again from the store
    assert daemon.cli("exec", "se-lr", "cat", "/run/secrets/se-live").stdout == VALUE
    daemon.cli("rm", "-f", "se-lr")
    assert _host_mounts(daemon.root) == []
