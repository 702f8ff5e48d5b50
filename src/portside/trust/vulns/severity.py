"""Severity of an OSV record: from its CVSS vectors (the `cvss` library computes the base
score and rating) or, without one, from the rating the record itself gives."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from portside.errors import InvalidArgument

LEVELS = ("unknown", "low", "medium", "high", "critical")
_WORDS = {"moderate": "medium", "important": "high", "negligible": "low", "none": "low",
          "unimportant": "low", "not yet assigned": "unknown"}


class BadSeverity(InvalidArgument):
    def __init__(self, text: str) -> None:
        super().__init__(f"unknown severity {text!r}: want one of {', '.join(LEVELS[1:])}")


def level(text: str) -> str:
    """A user's severity word as one of LEVELS."""
    word = text.strip().lower()
    word = _WORDS.get(word, word)
    if word not in LEVELS:
        raise BadSeverity(text)
    return word


def rank(name: str) -> int:
    return LEVELS.index(name) if name in LEVELS else 0


@lru_cache(maxsize=65536)  # feeds repeat vectors: score each once
def _from_vector(kind: str, vector: str) -> tuple[str, float] | None:
    import cvss

    try:
        if kind == "CVSS_V4":
            v4 = cvss.CVSS4(vector)
            return v4.severity.lower(), float(v4.base_score)
        if kind == "CVSS_V3":
            v3 = cvss.CVSS3(vector)
            return v3.severities()[0].lower(), float(v3.scores()[0])
        if kind == "CVSS_V2":
            score = float(cvss.CVSS2(vector).scores()[0])
            return ("high" if score >= 7 else "medium" if score >= 4 else "low"), score
    except (cvss.CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def of_record(record: dict[str, Any]) -> tuple[str, float]:
    """(level, score) of an OSV record; score is 0 when only a rating word is known."""
    best: tuple[str, float] | None = None
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and isinstance(entry.get("score"), str):
            found = _from_vector(str(entry.get("type")), entry["score"])
            if found and (best is None or found[1] > best[1]):
                best = found
    if best:
        return best
    places = [record.get("database_specific")]
    for affected in record.get("affected") or []:
        if isinstance(affected, dict):
            places += [affected.get("ecosystem_specific"), affected.get("database_specific")]
    for place in places:
        if isinstance(place, dict):
            for key in ("severity", "urgency"):
                word = place.get(key)
                if isinstance(word, str):
                    word = _WORDS.get(word.lower(), word.lower())
                    if word in LEVELS:
                        return word, 0.0
    return "unknown", 0.0
