"""COPY and ADD: resolve sources, key them for the cache, and write the new layer.

A COPY layer holds only what the step adds (the copied files and any missing parent
directories), streamed into the store from where the files are: the build context, a
stage's or image's tree materialised from its layers, a here-document, a download, or an
archive ADD unpacks. Ownership is 0:0 unless --chown, as in Docker.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.build import dockerignore
from portside.build.context import BuildContext, Entry
from portside.build.errors import BuildError, SourceNotFound
from portside.build.instructions import Instruction
from portside.build.state import StageState
from portside.numbers import is_digits
from portside.store.layers import Entry as TarEntry
from portside.store.layers import LayerResult, write_entries

if TYPE_CHECKING:
    from portside.build.executor import BuildRun

_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


@dataclass
class CopyStep:
    """A planned COPY/ADD: `inputs` key the cache; `execute` writes the layer on a miss."""

    inputs: dict[str, Any]
    execute: Callable[[], LayerResult]


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _is_archive(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if any(head.startswith(m) for m in _ARCHIVE_MAGIC):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def plan(run: BuildRun, state: StageState, inst: Instruction, env: dict[str, str]) -> CopyStep:
    kw = inst.keyword
    words = [run.expand(inst, w, env) for w in inst.words]
    flags = {k: run.expand(inst, str(v), env) for k, v in inst.flags.items() if isinstance(v, str)}
    dest_word, sources = words[-1], words[:-1]
    dest = posixpath.normpath(posixpath.join(state.workdir, dest_word))
    many = len(sources) + len(inst.heredocs) > 1 or any(c in s for s in sources for c in "*?[")
    chmod = _mode(run, inst, flags.get("chmod"))
    excludes = dockerignore.Matcher(dockerignore.parse("\n".join(inst.flags.get("exclude", []))))  # type: ignore[arg-type]
    # Only what the instruction says goes in the key: whatever the stage's tree decides
    # (is the destination a directory? who is --chown=name?) follows from the parent's key.
    inputs: dict[str, Any] = {
        "dest": dest_word,
        "workdir": state.workdir,
        "chmod": chmod,
        "chown": flags.get("chown"),
        "excludes": inst.flags.get("exclude", []),
        "sources": sources,
    }
    context, origin = _source(run, inst, flags.get("from"), inputs)
    matched: list[tuple[str, list[Entry]]] = []
    remote: list[tuple[str, Path | None]] = []
    checksum = flags.get("checksum")
    if checksum and not (len(sources) == 1 and is_url(sources[0])):
        raise BuildError(run.path, inst.line, "ADD --checksum needs exactly one http(s) source")
    for src in sources:
        if kw == "ADD" and is_url(src):
            if checksum:  # the checksum names the content: download only on a cache miss
                remote.append((src, None))
                inputs.setdefault("urls", []).append(checksum)
                continue
            path, digest = run.download(inst, src, None)
            remote.append((src, path))
            inputs.setdefault("urls", []).append(digest)
            continue
        if context is None:
            continue
        rels = context.match(src)
        if not rels:
            raise _not_found(run, inst, context, src, origin)
        for rel in rels:
            entries = _kept(context, rel, excludes)
            matched.append((rel, entries))
    if origin == "context":
        all_entries = [e for _, es in matched for e in es]
        try:
            inputs["content"] = run.ctx.content_digest(all_entries)
        except OSError as exc:
            raise _unreadable(run, inst, exc) from None
    docs = [
        (h.name, run.expand(inst, h.content, env) if h.expand else h.content) for h in inst.heredocs
    ]
    inputs["heredocs"] = docs

    def execute() -> LayerResult:
        nonlocal context, matched
        fs = run.fs(state)
        dest_is_dir = (
            dest_word.endswith(("/", "/."))
            or dest_word in (".", "..")
            or (fs.lookup(dest) or _NOT).is_dir
        )
        if many and not dest_is_dir:
            raise BuildError(
                run.path,
                inst.line,
                f"{kw}: with more than one source the"
                f" destination must be a directory ending in / ({dest_word!r})",
            )
        dest_is_dir = dest_is_dir or many
        uid, gid = _owner(run, state, inst, flags.get("chown"))
        if origin != "context" and context is None:
            context, matched = _materialise(run, inst, flags["from"], sources, excludes)
        items: dict[str, TarEntry] = {}
        now = run.mtime(None)
        for rel, entries in matched:
            top = entries[0]
            for e in entries:
                if top.is_dir:
                    sub = e.rel[len(rel) :].lstrip("/") if rel else e.rel
                    target = posixpath.join(dest, sub) if sub else dest
                elif dest_is_dir:
                    target = posixpath.join(dest, posixpath.basename(rel))
                else:
                    target = dest
                if kw == "ADD" and e is top and e.is_file and _is_archive(Path(e.path)):
                    owner = (uid, gid) if flags.get("chown") else None
                    if _unpack(run, Path(e.path), dest, items, owner, chmod):
                        continue  # else not a readable archive: copied as it is, as Docker does
                if (
                    target == dest
                    and top.is_dir
                    and fs.lookup(dest)
                    and not flags.get("chown")
                    and chmod is None
                ):
                    continue  # an existing destination directory keeps its metadata
                info = _info(target, Path(e.path), e.st, uid, gid, chmod, run)
                if info is not None:
                    items[info[0].name] = info
        for src, fetched in remote:
            path = fetched or run.download(inst, src, checksum)[0]
            target = posixpath.join(dest, _url_name(src)) if dest_is_dir else dest
            st = os.stat(path)
            info = _info(target, path, st, uid, gid, chmod if chmod is not None else 0o600, run)
            assert info is not None
            items[info[0].name] = info
        for name, text in docs:
            target = posixpath.join(dest, name) if dest_is_dir else dest
            ti = tarfile.TarInfo(posixpath.normpath(target).lstrip("/"))
            ti.mode, ti.uid, ti.gid, ti.mtime = 0o644 if chmod is None else chmod, uid, gid, now
            data = text.encode("utf-8", "surrogateescape")
            ti.size = len(data)
            items[ti.name] = (ti, data)
        _add_parents(items, fs, now)
        ordered = [items[k] for k in sorted(items, key=lambda n: n.split("/"))]
        result = write_entries(run.store.content, ordered, run.compression)
        from portside.build.stagefs import remember_index

        remember_index(result.diff_id, [info for info, _ in ordered])
        return result

    def guarded() -> LayerResult:
        try:
            return execute()
        except OSError as exc:  # a source unreadable, or gone since it was hashed
            raise _unreadable(run, inst, exc) from None

    return CopyStep(inputs, guarded)


def _mode(run: BuildRun, inst: Instruction, text: str | None) -> int | None:
    """--chmod, after substitution: an octal mode."""
    if not text:
        return None
    if not (3 <= len(text) <= 4 and all(c in "01234567" for c in text)):
        raise BuildError(
            run.path,
            inst.line,
            f"{inst.keyword}: invalid --chmod={text}: use an octal mode like 0755",
        )
    return int(text, 8)


def _unreadable(run: BuildRun, inst: Instruction, exc: OSError) -> BuildError:
    where = f" {exc.filename}" if exc.filename else ""
    return BuildError(
        run.path, inst.line, f"{inst.keyword}: cannot read{where}: {exc.strerror or exc}"
    )


class _Missing:
    is_dir = False


_NOT: Any = _Missing()


def _source(
    run: BuildRun, inst: Instruction, source: str | None, inputs: dict[str, Any]
) -> tuple[BuildContext | None, str]:
    if not source:
        return run.ctx, "context"
    stage_state = run.stage_state(source)
    if stage_state is not None:
        inputs["from"] = stage_state.key
        return None, f"stage {source!r}"
    image = run.image_for(inst, source)
    inputs["from"] = image.manifest_digest
    return None, f"image {source!r}"


def _materialise(
    run: BuildRun,
    inst: Instruction,
    source: str,
    sources: list[str],
    excludes: dockerignore.Matcher,
) -> tuple[BuildContext, list[tuple[str, list[Entry]]]]:
    """Unpack what COPY --from needs of a stage or image into a private directory."""
    from portside.build.stagefs import StageFS

    state = run.stage_state(source)
    layers = state.layers if state is not None else run.image_layers(run.image_for(inst, source))
    fs = StageFS(run.store.content, layers)
    top = Path(tempfile.mkdtemp(dir=run.tmp, prefix="from-"))
    for src in sources:
        parts = dockerignore.clean(src).split("/")
        literal = []
        for part in parts:
            if any(c in part for c in "*?["):
                break
            literal.append(part)
        prefix = "/".join(p for p in literal if p)
        fs.export(prefix, top / prefix if prefix else top)
    context = BuildContext(top, run.cache, dockerignore.Matcher([]), remember=False)
    matched = []
    for src in sources:
        rels = context.match(src)
        if not rels:
            raise _not_found(run, inst, context, src, f"--from={source}")
        for rel in rels:
            matched.append((rel, _kept(context, rel, excludes)))
    return context, matched


def _kept(context: BuildContext, rel: str, excludes: dockerignore.Matcher) -> list[Entry]:
    """The entries under the source `rel` that no --exclude pattern (relative to it) drops."""
    if not excludes.patterns:
        return list(context.tree(rel))
    out = []
    for e in context.tree(rel):
        sub = e.rel[len(rel) :].lstrip("/") if rel else e.rel
        if e.rel == rel and not e.is_dir:
            sub = posixpath.basename(rel)
        if sub and excludes.ignored(sub):
            continue
        out.append(e)
    return out


def _not_found(
    run: BuildRun, inst: Instruction, context: BuildContext, src: str, origin: str
) -> SourceNotFound:
    if origin == "context" and context.exists_ignored(src):
        return SourceNotFound(
            run.path,
            inst.line,
            f"{inst.keyword} {src}: the file is excluded by"
            f" {context.matcher.source} (remove it from there to copy it)",
        )
    where = "the build context" if origin == "context" else origin
    return SourceNotFound(run.path, inst.line, f"{inst.keyword} {src}: not found in {where}")


def _info(
    target: str,
    path: Path,
    st: os.stat_result,
    uid: int,
    gid: int,
    chmod: int | None,
    run: BuildRun,
) -> TarEntry | None:
    ti = tarfile.TarInfo(posixpath.normpath(target).lstrip("/") or ".")
    mode = st.st_mode
    ti.uid, ti.gid = uid, gid
    ti.mode = chmod if chmod is not None else stat.S_IMODE(mode)
    ti.mtime = run.mtime(int(st.st_mtime))
    if stat.S_ISREG(mode):
        ti.type, ti.size = tarfile.REGTYPE, st.st_size
        return ti, path
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
    else:
        return None  # sockets, fifos and devices are not copied from a context
    return ti, None


def _add_parents(items: dict[str, TarEntry], fs: Any, mtime: int) -> None:
    for name in list(items):
        parent = posixpath.dirname(name)
        while parent and parent not in items:
            if fs.lookup("/" + parent) is not None:
                break
            ti = tarfile.TarInfo(parent)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
            items[parent] = (ti, None)
            parent = posixpath.dirname(parent)


def _unpack(
    run: BuildRun,
    archive: Path,
    dest: str,
    items: dict[str, TarEntry],
    owner: tuple[int, int] | None,
    chmod: int | None,
) -> bool:
    """ADD of a local archive: its entries land under `dest` (a directory), keeping their
    owners unless --chown. Unsafe members (absolute, `..`, links out) are refused by
    tarfile's `tar` filter. False (nothing added) when the file is not a readable archive."""
    from portside.build.stagefs import walk_tree

    top = Path(tempfile.mkdtemp(dir=run.tmp, prefix="add-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(top, filter="tar")
    except (tarfile.TarError, EOFError, ValueError, OSError):
        shutil.rmtree(top, ignore_errors=True)
        return False
    found: dict[str, TarEntry] = {}
    for rel, path, st in walk_tree(top):
        if not rel:
            continue
        uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
        info = _info(posixpath.join(dest, rel), path, st, uid, gid, chmod, run)
        if info is not None:
            found[info[0].name] = info
    items.update(found)
    return True


def _url_name(url: str) -> str:
    from urllib.parse import urlsplit

    return posixpath.basename(urlsplit(url).path.rstrip("/")) or "index.html"


def _owner(
    run: BuildRun, state: StageState, inst: Instruction, chown: str | None
) -> tuple[int, int]:
    """--chown=user[:group]: names from the stage's /etc/passwd and /etc/group; a user
    without a group gives the same number for both, as Docker documents."""
    if not chown:
        return 0, 0
    return user_ids(run, state, inst, chown, f"--chown={chown}", primary_group=False)


def user_ids(
    run: BuildRun,
    state: StageState,
    inst: Instruction,
    spec: str,
    what: str,
    primary_group: bool = True,
) -> tuple[int, int]:
    """uid and gid of `user[:group]` in the stage. With `primary_group`, a user without a
    group gets its passwd entry's group (0 when it has none), as a process started as that
    USER would."""
    user, _, group = spec.partition(":")
    fs = run.fs(state)
    tables: dict[str, list[list[str]]] = {}

    def rows(table: str) -> list[list[str]]:
        if table not in tables:
            data = (fs.read_file(table) or b"").decode("utf-8", "replace")
            tables[table] = [ln.split(":") for ln in data.splitlines() if ln.count(":") >= 2]
        return tables[table]

    def look(name: str, table: str) -> int:
        if is_digits(name):
            return int(name)
        for fields in rows(table):
            if fields[0] == name and is_digits(fields[2]):
                return int(fields[2])
        raise BuildError(
            run.path, inst.line, f"{inst.keyword} {what}: no {name!r} in the stage's {table}"
        )

    uid = look(user, "/etc/passwd")
    if group:
        return uid, look(group, "/etc/group")
    if not primary_group:
        return uid, uid
    for fields in rows("/etc/passwd"):
        if len(fields) > 3 and fields[2] == str(uid) and is_digits(fields[3]):
            return uid, int(fields[3])
    return uid, 0
