"""A structure-test file: YAML in container-structure-test's schema, checked key by key so
an unknown or misplaced key is reported with its line (`tests.yaml:7: unknown key ...`)."""

from __future__ import annotations

from typing import Any

import yaml

from portside.errors import InvalidArgument

# section -> the keys one of its entries may have (None: the section is one mapping)
_KEYS: dict[str, set[str]] = {
    "commandTests": {"name", "command", "args", "expectedOutput", "excludedOutput",
                     "expectedError", "excludedError", "exitCode", "envVars", "setup",
                     "teardown", "entrypoint"},
    "fileExistenceTests": {"name", "path", "shouldExist", "permissions", "uid", "gid",
                           "isExecutableBy"},
    "fileContentTests": {"name", "path", "expectedContents", "excludedContents"},
    "metadataTest": {"envVars", "labels", "exposedPorts", "unexposedPorts", "volumes",
                     "unmountedVolumes", "entrypoint", "cmd", "workdir", "user"},
}
_TOP = {"schemaVersion", "globalEnvVars", *_KEYS}


class SpecError(InvalidArgument):
    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")


def _check(node: yaml.Node, allowed: set[str], path: str, where: str) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise SpecError(path, node.start_mark.line + 1, f"{where} must be a mapping")
    for key, _ in node.value:
        if key.value not in allowed:
            raise SpecError(path, key.start_mark.line + 1, f"unknown key {key.value!r} in {where}")


def load(text: str, path: str) -> dict[str, Any]:
    """The tests of a file, each section checked for unknown keys (with their lines)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(path, mark.line + 1 if mark else 0, f"not YAML: {exc}") from None
    if root is None:
        raise SpecError(path, 1, "empty test file")
    _check(root, _TOP, path, "the file")
    for key, value in root.value:
        if key.value not in _KEYS:
            continue
        if key.value == "metadataTest":
            _check(value, _KEYS[key.value], path, key.value)
            continue
        if not isinstance(value, yaml.SequenceNode):
            raise SpecError(path, value.start_mark.line + 1, f"{key.value} must be a list")
        for i, entry in enumerate(value.value):
            _check(entry, _KEYS[key.value], path, f"{key.value}[{i}]")
    doc: dict[str, Any] = yaml.safe_load(text)
    version = str(doc.get("schemaVersion", ""))
    if not version.startswith("2."):
        raise SpecError(path, 1, f"schemaVersion {version!r}: want 2.0.0")
    return doc
