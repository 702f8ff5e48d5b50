"""The readers of `Document`s: a value by its path, narrowed to the type a caller wants."""

from __future__ import annotations

from portside.engine.interface import (
    Document,
    at,
    bool_at,
    doc_at,
    int_at,
    list_at,
    number_at,
    str_at,
)

DOC: Document = {"Id": "abc", "State": {"Running": True, "ExitCode": 3, "Health": None},
                 "Config": {"Tty": False, "Env": ["A=1"]},
                 "cpu": {"usage": 1.5, "flag": True}}


def test_values_by_path() -> None:
    assert at(DOC, "State", "ExitCode") == 3
    assert at(DOC) is DOC
    assert at(DOC, "State", "Health", "Status") is None  # a level that is not an object
    assert at(DOC, "Id", "x") is None and at(DOC, "Nope") is None


def test_readers_narrow_or_fall_back() -> None:
    assert str_at(DOC, "Id") == "abc" and str_at(DOC, "State", "ExitCode") == ""
    assert int_at(DOC, "State", "ExitCode") == 3 and int_at(DOC, "Id") == 0
    assert number_at(DOC, "cpu", "usage") == 1.5
    assert number_at(DOC, "cpu", "flag") == 0  # a bool is not a number here
    assert bool_at(DOC, "State", "Running") and not bool_at(DOC, "Config", "Tty")
    assert list_at(DOC, "Config", "Env") == ["A=1"] and list_at(DOC, "Id") == []
    assert doc_at(DOC, "Config") == {"Tty": False, "Env": ["A=1"]} and doc_at(DOC, "Id") == {}
