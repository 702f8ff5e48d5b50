"""Each ecosystem's version order: dpkg's against `dpkg --compare-versions` itself, PEP 440
and semver through their libraries, and OSV's range evaluation on top of them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.trust.vulns import versions
from portside.trust.vulns.db import Affected
from portside.trust.vulns.match import evaluate

_upstream = st.from_regex(r"[0-9][0-9a-z.+~]{0,6}", fullmatch=True)
_revision = st.from_regex(r"[0-9a-z+.~]{1,6}", fullmatch=True)
dpkg_versions = st.builds(
    lambda epoch, upstream, revision: f"{f'{epoch}:' if epoch is not None else ''}{upstream}"
                                      f"{f'-{revision}' if revision else ''}",
    st.one_of(st.none(), st.integers(0, 3)), _upstream, st.one_of(st.none(), _revision),
)


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@settings(max_examples=150, deadline=None)
@given(dpkg_versions, dpkg_versions)
def test_debian_order_is_dpkgs(a: str, b: str) -> None:
    va, vb = versions.debian(a), versions.debian(b)
    assert va is not None and vb is not None
    assert (va < vb) == dpkg_lt(a, b)


@pytest.mark.parametrize(("low", "high"), [
    ("2.36-9+deb12u3", "2.36-9+deb12u14"),  # a string compare gets this one wrong
    ("1:1.0", "1:1.0.1"),
    ("9.9", "1:0.1"),  # the epoch wins
    ("1.0~rc1", "1.0"),  # tilde sorts before everything
])
def test_debian_order_examples(low: str, high: str) -> None:
    assert versions.debian(low) < versions.debian(high)  # type: ignore[operator]
    assert dpkg_lt(low, high)


def test_pep440_and_semver() -> None:
    assert versions.pypi("2.31.0") < versions.pypi("2.32.0rc1") < versions.pypi("2.32.0")  # type: ignore[operator]
    assert versions.pypi("not a version!") is None
    assert versions.semantic("4.17.20") < versions.semantic("4.17.21")  # type: ignore[operator]
    assert versions.semantic("1.0.0-alpha") < versions.semantic("1.0.0")  # type: ignore[operator]
    assert versions.semantic("v1.2.3") == versions.semantic("1.2.3")
    assert versions.ordering("Debian:12") is versions.debian
    assert versions.ordering("crates.io") is None


def _entry(events: list[dict[str, str]], kind: str = "ECOSYSTEM", eco: str = "Debian",
           listed: tuple[str, ...] = ()) -> Affected:
    return Affected("X-1", eco, "", "pkg", [{"type": kind, "events": events}], list(listed))


def test_ranges_introduced_fixed_last_affected() -> None:
    fixed = _entry([{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}])
    assert evaluate(fixed, "2.36-9+deb12u2") == (True, "2.36-9+deb12u3")
    assert evaluate(fixed, "2.36-9+deb12u14") == (False, "")
    window = _entry([{"introduced": "1.2"}, {"fixed": "1.5"}, {"introduced": "2.0"},
                     {"last_affected": "2.3"}], eco="PyPI")
    assert evaluate(window, "1.1")[0] is False
    assert evaluate(window, "1.4") == (True, "1.5")
    assert evaluate(window, "1.7")[0] is False
    assert evaluate(window, "2.3") == (True, "")
    assert evaluate(window, "2.4")[0] is False
    semver = _entry([{"introduced": "0"}, {"fixed": "4.17.21"}], kind="SEMVER", eco="npm")
    assert evaluate(semver, "4.17.20") == (True, "4.17.21")
    assert evaluate(semver, "4.17.21")[0] is False


def test_listed_versions_count_whatever_the_ranges() -> None:
    entry = _entry([], eco="crates.io", listed=("0.1.0",))
    assert evaluate(entry, "0.1.0")[0] is True
    assert evaluate(entry, "0.2.0")[0] is False


@settings(max_examples=100, deadline=None)
@given(dpkg_versions, dpkg_versions)
def test_range_agrees_with_dpkg(fix: str, installed: str) -> None:
    entry = _entry([{"introduced": "0"}, {"fixed": fix}])
    assert evaluate(entry, installed)[0] == dpkg_lt(installed, fix)
