"""Hostile Dockerfiles through the whole builder (no RUN): only portside errors, never a crash."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.build.builder import BuildOptions, build
from portside.build.output import Progress
from portside.errors import PortsideError
from portside.store.images import ImageStore

_word = st.sampled_from(
    [
        "a.txt",
        "dir",
        "dir/",
        "*",
        "*.txt",
        "d?r",
        "[a-c].txt",
        "/",
        ".",
        "..",
        "../x",
        "$A",
        "${A}",
        "${A:-dir}",
        "${A:+x}",
        '"a b"',
        "'q'",
        "/abs/",
        "rel",
        "nope",
        "\\$A",
        "0",
        "stage",
        "~",
        "a.tar",
        "-",
        "--",
        "x=y",
        "A=1",
        "80/tcp",
        "1-2",
        "SIGKILL",
        "1000:1000",
        "app:app",
    ]
)
_line = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "COPY",
                "ADD",
                "WORKDIR",
                "ENV",
                "LABEL",
                "EXPOSE",
                "VOLUME",
                "USER",
                "STOPSIGNAL",
                "ARG",
                "CMD",
                "ENTRYPOINT",
                "SHELL",
                "ONBUILD COPY",
                "COPY --from=stage",
                "COPY --from=0",
                "COPY --chown=app:app",
                "COPY --chmod=755",
                "COPY --exclude=*.txt",
                "HEALTHCHECK CMD",
                "FROM scratch AS",
                "FROM stage AS",
            ]
        ),
        st.lists(_word, min_size=0, max_size=3),
    ).map(lambda t: " ".join([t[0], *t[1]])),
    st.text(max_size=30),
)
_dockerfile = st.lists(_line, max_size=8).map(
    lambda lines: "FROM scratch AS stage\nCOPY a.txt /\n" + "\n".join(lines) + "\n"
)


def _context(top: Path) -> None:
    (top / "dir" / "sub").mkdir(parents=True)
    (top / "a.txt").write_text("a")
    (top / "b.txt").write_text("b")
    (top / "dir" / "sub" / "c.txt").write_text("c")
    import tarfile

    with tarfile.open(top / "a.tar", "w") as t:
        t.add(top / "a.txt", "inside/a.txt")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_dockerfile)
def test_builder_raises_only_portside_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / "ctx"
        _context(top)
        store = ImageStore(Path(tmp) / "root")
        try:
            options = BuildOptions(context=top, dockerfile_text=text, build_args={"A": "dir"})
            try:
                build(store, options, Progress("plain", io.StringIO()))
            except PortsideError as exc:
                assert "\n" not in str(exc)
        finally:
            store.db.close()
