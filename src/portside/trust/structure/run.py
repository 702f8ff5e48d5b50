"""Run structure tests: metadata against the image config, files against the image's
layers (no container needed), commands in real containers through the engine's
containers interface (passed in: this module never chooses an engine).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from typing import Any

from portside.engine.interface import ContainersAPI, CreateOptions, LogOptions
from portside.store.images import Image, ImageStore
from portside.trust.structure.tree import Tree


@dataclass
class Result:
    kind: str  # "command", "file existence", "file content", "metadata"
    name: str
    passed: bool
    errors: list[str]


def _perm_string(mode: int) -> str:
    return stat.filemode(mode)


def _matches(patterns: list[str], text: str) -> list[str]:
    return [p for p in patterns if re.search(p, text, re.MULTILINE)]


def _file_existence(tree: Tree, test: dict[str, Any]) -> list[str]:
    path = str(test.get("path", ""))
    entry = tree.get(path)
    should = test.get("shouldExist", True)
    if entry is None:
        return [f"{path} does not exist"] if should else []
    if not should:
        return [f"{path} exists"]
    errors = []
    if "permissions" in test and _perm_string(entry.mode) != test["permissions"]:
        errors.append(f"{path}: permissions {_perm_string(entry.mode)}, want {test['permissions']}")
    for key, value in (("uid", entry.uid), ("gid", entry.gid)):
        if key in test and int(test[key]) != value:
            errors.append(f"{path}: {key} {value}, want {test[key]}")
    who = test.get("isExecutableBy")
    bits = {"owner": 0o100, "group": 0o010, "other": 0o001, "any": 0o111}
    if who and not entry.mode & bits.get(str(who), 0):
        errors.append(f"{path}: not executable by {who}")
    return errors


def _file_content(tree: Tree, test: dict[str, Any]) -> list[str]:
    path = str(test.get("path", ""))
    data = tree.read(path)
    if data is None:
        return [f"{path} is not a regular file in the image"]
    text = data.decode(errors="replace")
    wanted = list(test.get("expectedContents") or [])
    errors = [f"{path}: no match for {p!r}" for p in wanted if p not in _matches(wanted, text)]
    errors += [f"{path}: matches excluded {p!r}"
               for p in _matches(list(test.get("excludedContents") or []), text)]
    return errors


def _metadata(config: dict[str, Any], test: dict[str, Any]) -> list[str]:
    errors = []
    env = dict(e.partition("=")[::2] for e in config.get("Env") or [])
    for kind, have in (("envVars", env), ("labels", config.get("Labels") or {})):
        for item in test.get(kind) or []:
            key, value = str(item.get("key")), str(item.get("value", ""))
            got = have.get(key)
            ok = got is not None and (re.search(value, got) if item.get("isRegex")
                                      else got == value)
            if not ok:
                errors.append(f"{kind} {key}={got!r}, want {value!r}")
    ports = {p.split("/")[0] if p.endswith("/tcp") else p for p in config.get("ExposedPorts") or {}}
    errors += [f"port {p} is not exposed" for p in test.get("exposedPorts") or []
               if str(p) not in ports]
    errors += [f"port {p} is exposed" for p in test.get("unexposedPorts") or [] if str(p) in ports]
    volumes = set(config.get("Volumes") or {})
    errors += [f"volume {v} is not declared" for v in test.get("volumes") or [] if v not in volumes]
    errors += [f"volume {v} is declared" for v in test.get("unmountedVolumes") or []
               if v in volumes]
    for key, field in (("entrypoint", "Entrypoint"), ("cmd", "Cmd")):
        if key in test and list(test[key] or []) != list(config.get(field) or []):
            errors.append(f"{key} {config.get(field)!r}, want {test[key]!r}")
    for key, field in (("workdir", "WorkingDir"), ("user", "User")):
        if key in test and str(test[key]) != str(config.get(field) or ""):
            errors.append(f"{key} {config.get(field)!r}, want {test[key]!r}")
    return errors


def _command(containers: ContainersAPI, image: str, test: dict[str, Any],
             global_env: list[dict[str, Any]]) -> list[str]:
    env = [f"{e['key']}={e.get('value', '')}" for e in [*global_env, *(test.get("envVars") or [])]]
    body: dict[str, Any] = {"Image": image, "Env": env, "Tty": False,
                            "Entrypoint": [str(test.get("command", ""))],
                            "Cmd": [str(a) for a in test.get("args") or []],
                            "HostConfig": {"NetworkMode": "none"}}
    if test.get("entrypoint"):
        body["Entrypoint"] = [str(a) for a in test["entrypoint"]]
        body["Cmd"] = [str(test.get("command", "")), *body["Cmd"]]
    created = containers.create(CreateOptions(body=body))
    try:
        containers.start(created.id)
        code = containers.wait(created.id).status_code
        out, err = bytearray(), bytearray()
        for chunk in containers.logs(created.id, LogOptions()):
            (out if chunk.stream == 1 else err).extend(chunk.data)
    finally:
        containers.remove(created.id, force=True)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    errors = []
    if code != int(test.get("exitCode", 0)):
        errors.append(f"exit code {code}, want {test.get('exitCode', 0)}")
    for key, text, want in (("expectedOutput", stdout, True), ("excludedOutput", stdout, False),
                            ("expectedError", stderr, True), ("excludedError", stderr, False)):
        patterns = [str(p) for p in test.get(key) or []]
        hit = _matches(patterns, text)
        errors += ([f"{key}: no match for {p!r} in {text[:200]!r}" for p in patterns
                    if p not in hit] if want else [f"{key}: {p!r} matched" for p in hit])
    return errors


def run_tests(spec: dict[str, Any], store: ImageStore, image: Image, ref: str,
              containers: ContainersAPI | None) -> list[Result]:
    """Every test of `spec`; command tests need `containers` (None: they are skipped)."""
    results: list[Result] = []
    config = store.config(image).config
    if (meta := spec.get("metadataTest")) is not None:
        errors = _metadata(config, meta)
        results.append(Result("metadata", "metadata", not errors, errors))
    files = [*(spec.get("fileExistenceTests") or []), *(spec.get("fileContentTests") or [])]
    if files:
        tree = Tree(store, image)
        for test in spec.get("fileExistenceTests") or []:
            errors = _file_existence(tree, test)
            results.append(Result("file existence", str(test.get("name", test.get("path"))),
                                  not errors, errors))
        for test in spec.get("fileContentTests") or []:
            errors = _file_content(tree, test)
            results.append(Result("file content", str(test.get("name", test.get("path"))),
                                  not errors, errors))
    global_env = list(spec.get("globalEnvVars") or [])
    for test in spec.get("commandTests") or []:
        if containers is None:
            continue
        errors = _command(containers, ref, test, global_env)
        results.append(Result("command", str(test.get("name", test.get("command"))),
                              not errors, errors))
    return results
