"""The Dockerfile language: directives, continuations, heredocs, forms, flags, stages."""

from __future__ import annotations

import pytest

from portside.build.errors import DockerfileError
from portside.build.instructions import parse, parse_trigger


def only_stage(text: str):  # type: ignore[no-untyped-def]
    df = parse(text)
    assert len(df.stages) == 1
    return df.stages[0].instructions


def test_directives_comments_and_case() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# Escape = `\n\n# comment\nfrom scratch AS Build\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`"
    assert df.stages[0].name == "build"


def test_directive_after_a_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM scratch\nRUN a \\\n  b\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].words == ["a b"]


def test_backtick_escape_continues_lines() -> None:
    insts = only_stage("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo done\n")
    assert insts[0].words == ["dir c:\\ && echo done"]
    assert insts[0].line == 3 and insts[0].end_line == 4


def test_blank_and_comment_lines_inside_continuations() -> None:
    insts = only_stage(
        "FROM scratch\nRUN apt-get update && \\\n\n# install\n    apt-get install -y x\nUSER me\n"
    )
    assert insts[0].words == ["apt-get update && apt-get install -y x"]
    assert insts[1].keyword == "USER" and insts[1].line == 6


def test_heredocs() -> None:
    text = (
        "FROM scratch\n"
        "RUN <<EOF\necho $HOME\nEOF\n"
        "RUN <<-TABS cat <<'RAW'\n\tindented\n\tTABS\nkeep $this\nRAW\n"
        "COPY <<conf /etc/app.conf\nkey=1\nconf\n"
        "USER x\n"
    )
    run1, run2, copy, user = only_stage(text)
    assert run1.heredocs[0].content == "echo $HOME\n" and run1.heredocs[0].expand
    first, second = run2.heredocs
    assert (first.name, first.content, first.strip_tabs) == ("TABS", "indented\n", True)
    assert (second.name, second.content, second.expand) == ("RAW", "keep $this\n", False)
    assert copy.words == ["/etc/app.conf"] and copy.heredocs[0].content == "key=1\n"
    assert user.line == 13


def test_exec_and_shell_forms() -> None:
    cmd, ep, run, test = only_stage(
        'FROM scratch\nCMD ["a", "b c"]\nENTRYPOINT exec app\nRUN [ -f /x ] && echo y\nRUN ["x"]\n'
    )
    assert (cmd.words, cmd.json_form) == (["a", "b c"], True)
    assert (ep.words, ep.json_form) == (["exec app"], False)
    assert (run.words, run.json_form) == (["[ -f /x ] && echo y"], False)
    assert test.json_form


def test_env_label_forms() -> None:
    env1, env2, label = only_stage(
        'FROM scratch\nENV a=1 b="two words" c=x\\ y\nENV legacy the rest of it\nLABEL "k 1"=v k2=\'w\'\n'
    )
    assert env1.pairs == [("a", "1"), ("b", '"two words"'), ("c", "x\\ y")]
    assert env2.pairs == [("legacy", "the rest of it")]
    assert label.pairs == [('"k 1"', "v"), ("k2", "'w'")]


def test_flags_of_every_kind() -> None:
    frm = parse("FROM --platform=linux/amd64 scratch AS b\n").stages[0]
    assert frm.platform == "linux/amd64" and frm.name == "b"
    copy, add, run, hc = only_stage(
        "FROM scratch\nCOPY --from=b --chown=1:2 --chmod=0755 --link a* /d/\n"
        "ADD --checksum=sha256:00 https://e.x/f /f\n"
        "RUN --mount=type=cache,target=/c --mount=type=secret,id=tok --network=none make\n"
        'HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=3 CMD ["x"]\n'
    )
    assert copy.flags == {"from": "b", "chown": "1:2", "chmod": "0755", "link": True}
    assert add.flags == {"checksum": "sha256:00"}
    assert run.mounts == [
        {"type": "cache", "target": "/c"},
        {"type": "secret", "id": "tok", "target": "/run/secrets/tok"},
    ]
    assert run.flags["network"] == "none"
    assert hc.healthcheck == {
        "Test": ["CMD", "x"],
        "Interval": 90 * 10**9,
        "Timeout": 500 * 10**6,
        "StartPeriod": 2 * 10**9,
        "Retries": 3,
    }


def test_healthcheck_none_and_shell() -> None:
    a, b = only_stage("FROM scratch\nHEALTHCHECK NONE\nHEALTHCHECK CMD curl -f x || exit 1\n")
    assert a.healthcheck == {"Test": ["NONE"]}
    assert b.healthcheck == {"Test": ["CMD-SHELL", "curl -f x || exit 1"]}


def test_global_args_and_stages() -> None:
    df = parse("ARG A=1 B\nARG C\nFROM img:$A AS one\nARG A\nFROM one\nCOPY --from=one / /\n")
    assert [p for i in df.global_args for p in i.pairs] == [("A", "1"), ("B", None), ("C", None)]
    assert [s.base for s in df.stages] == ["img:$A", "one"]
    assert df.stage("one") is df.stages[0] and df.stage("1") is df.stages[1]
    assert df.stage("nope") is None


def test_onbuild_and_maintainer() -> None:
    onb, maint = only_stage("FROM scratch\nONBUILD COPY . /app\nMAINTAINER Jane <j@x>\n")
    assert onb.trigger is not None and onb.trigger.keyword == "COPY"
    assert maint.args == "Jane <j@x>"
    assert parse_trigger("RUN make", "Dockerfile", 1).keyword == "RUN"


def test_crlf_and_bom() -> None:
    insts = only_stage("\ufeffFROM scratch\r\nENV a=1 \\\r\n  b=2\r\n")
    assert insts[0].pairs == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize("text", ["FROM scratch\nCOPY --from= a /b\n", "FROM scratch\nCMD\n"])
def test_errors_name_the_line(text: str) -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: "):
        parse(text)
