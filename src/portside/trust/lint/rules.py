"""The lint rules: id -> (severity, what it checks). Ids are stable: users ignore them by
name, so an id is never reused for another check."""

from __future__ import annotations

from dataclasses import dataclass

from portside.errors import InvalidArgument

RULES: dict[str, tuple[str, str]] = {
    "PS100": ("critical", "a private key in a layer (even one deleted by a later layer)"),
    "PS101": ("critical", "an .env file in a layer"),
    "PS102": ("critical", "an access token in a layer (AWS, GitHub, Slack, GitLab)"),
    "PS200": ("medium", "package manager caches left in a layer"),
    "PS201": ("low", "compilers or build tools an application image does not need"),
    "PS300": ("medium", "the image runs as root"),
    "PS301": ("medium", "more layers than --max-layers"),
    "PS302": ("medium", "an expected port is not exposed, or one not expected is"),
    "PS303": ("medium", "a host-specific assumption: a fixed IP address or hosts entry"),
    "PS400": ("medium", "FROM without a tag or digest"),
    "PS401": ("low", "FROM an image's :latest tag"),
    "PS402": ("low", "apt-get install without removing /var/lib/apt/lists in the same RUN"),
    "PS403": ("medium", "ADD where COPY fits (a local file that is no archive)"),
    "PS404": ("low", "pip install without --no-cache-dir"),
}


class UnknownRule(InvalidArgument):
    def __init__(self, rule: str) -> None:
        super().__init__(f"unknown lint rule {rule!r}: the rules are {', '.join(RULES)}")


def check_ids(ids: tuple[str, ...] | list[str]) -> set[str]:
    for rule in ids:
        if rule.upper() not in RULES:
            raise UnknownRule(rule)
    return {r.upper() for r in ids}


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str  # "layer 2 (sha256:...)", "Dockerfile:3", "config"
    message: str

    @property
    def severity(self) -> str:
        return RULES[self.rule][0]
