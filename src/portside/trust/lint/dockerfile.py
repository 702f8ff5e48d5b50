"""Lint a Dockerfile in the spirit of hadolint (DL3006/DL3007 untagged and :latest bases,
DL3009 apt lists left behind, DL3020 ADD for plain files, DL3042 pip's cache), through the
builder's own parser so the lines are the ones the build reports."""

from __future__ import annotations

import json
import re

from portside.build.dockerfile import parse_text
from portside.build.shellwords import split_words
from portside.trust.lint.rules import Finding

_ARCHIVE = re.compile(r"\.(?:tar|tar\.\w+|tgz|tbz2?|txz)$")


def _arguments(args: str, escape: str) -> list[str]:
    """ADD's sources and destination, in the JSON form or the shell form, flags left out."""
    if args.lstrip().startswith("["):
        try:
            words = json.loads(args)
        except ValueError:
            words = None
        if isinstance(words, list):
            return [str(w) for w in words]
    return [w.strip("\"'") for w in split_words(args, escape) if not w.startswith("--")]


def lint_dockerfile(text: str, path: str = "Dockerfile") -> list[Finding]:
    parsed = parse_text(text, path)
    findings: list[Finding] = []
    stages: set[str] = set()
    for node in parsed.nodes:
        where = f"{path}:{node.line}"
        if node.keyword == "FROM":
            words = [w for w in split_words(node.args, parsed.escape) if not w.startswith("--")]
            if not words:
                continue
            base = words[0]
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            if base.lower() == "scratch" or base.lower() in stages or "$" in base:
                continue
            name = base.rsplit("/", 1)[-1]
            if "@" in base:
                continue
            if ":" not in name:
                findings.append(Finding("PS400", where, f"FROM {base}: pin a tag or a digest"))
            elif name.endswith(":latest"):
                findings.append(Finding("PS401", where, f"FROM {base}: :latest moves"))
        elif node.keyword == "RUN":
            script = node.args + "".join(h.content for h in node.heredocs)
            if re.search(r"\bapt-get\b[^;&|]*\binstall\b", script) and \
                    "/var/lib/apt/lists" not in script:
                findings.append(Finding("PS402", where, "apt-get install leaves "
                                        "/var/lib/apt/lists: add rm -rf /var/lib/apt/lists/*"))
            if re.search(r"\bpip3?\b[^;&|]*\binstall\b", script) and "--no-cache-dir" not in script:
                findings.append(Finding("PS404", where, "pip install keeps its cache: "
                                        "add --no-cache-dir"))
        elif node.keyword == "ADD":
            words = _arguments(node.args, parsed.escape)
            for source in words[:-1]:
                if "://" not in source and not source.startswith("git@") and \
                        not _ARCHIVE.search(source):
                    findings.append(Finding("PS403", where, f"ADD {source}: use COPY"))
    return findings
