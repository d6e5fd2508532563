"""Files that exist complete or not at all, their digests, and locks on their names.

Every write of the harness that must survive a kill goes through `atomic_path`: the
content is written to a hidden temporary sibling named after its writer
(``.tmp-<host>.<pid>-<tag>-<name>``), flushed to the disk (fsync) and moved into place, so
readers see the old file or the new one, never half of one. A kill leaves at most the
temporary sibling, which `clean_partial` removes once its writer has ended (never the
temporary files of a writer that is still running). The sibling's name is `TMP_OVERHEAD`
characters longer than the target's: a name must leave that room (see
`store.outputs.check_names`). `file_lock` lets writers of one name take turns.

Given a ``root``, a write stays below it (`check_inside`): a path with ``..`` or one through
a symbolic link below the root is refused, so no name read from a received results folder
writes elsewhere. Files read back from such a folder that must be trusted carry their own
digest in a header line (`write_sealed`, `read_sealed`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"
TMP_OVERHEAD = 40  # characters a temporary sibling adds to a name: prefix, host, pid, random tag
STALE_AFTER_S = 3600  # a temporary file this old is a leftover whoever wrote it (writes take seconds)
LOCK_PREFIX = ".lock-"
HOST = hashlib.sha256(platform.node().encode()).hexdigest()[:6]  # this machine, in temporary names


def owner() -> str:
    """This writer as temporary names spell it: ``<host>.<pid>``."""
    return f"{HOST}.{os.getpid()}"


def tmp_sibling(path: Path) -> Path:
    """A fresh hidden temporary sibling of ``path`` named after its writer (host and process),
    so `clean_partial` can tell a killed writer's leftovers from a running writer's files."""
    path = Path(path)
    return path.parent / f"{TMP_PREFIX}{owner()}-{uuid.uuid4().hex[:8]}-{path.name}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """Flush a file, or every file and folder below a folder, to the disk."""
    if path.is_dir():
        for sub, _, names in os.walk(path):
            for name in names:
                if not os.path.islink(os.path.join(sub, name)):
                    _fsync(Path(sub, name))
            _fsync(Path(sub))
    else:
        _fsync(path)


class OutsideRoot(PermissionError):
    """A write that would land outside its output root (``..``, an absolute name, a symbolic link)."""


def check_inside(root: Path, path: Path) -> Path:
    """``path``, unless it does not lie below ``root`` by its name alone (no ``..``) or one of
    the folders or files from ``root`` down to it is a symbolic link (which a write would
    follow out of the root): then `OutsideRoot`, in one line."""
    root, path = Path(os.path.abspath(root)), Path(path)
    full = Path(os.path.abspath(path))
    if ".." in path.parts or not full.is_relative_to(root) or full == root:
        raise OutsideRoot(f"refusing to write {path}: it is not below the output root {root}")
    here = root
    for part in full.relative_to(root).parts:
        here = here / part
        if here.is_symlink():
            raise OutsideRoot(f"refusing to write {path}: {here} is a symbolic link out of the output root {root}")
    return path


def ensure_dir(root: Path, path: Path) -> Path:
    """Create the folder ``path`` below ``root`` (with its parents), never through a symbolic
    link (`check_inside`); returns ``path``."""
    Path(check_inside(root, path)).mkdir(parents=True, exist_ok=True)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: Path, *, directory: bool = False, root: Path | None = None,
                place: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Write ``path`` atomically: yields a temporary sibling to fill (with ``directory``, an
    empty folder made for it; otherwise a name to write a file at). When the block ends
    without error the sibling is flushed to the disk and moved into place by
    ``place(tmp, path)`` (default: a rename over ``path``); when it or ``place`` fails the
    sibling is removed and the error raised. Creates ``path``'s parent folders; with
    ``root``, only below it (`check_inside`)."""
    path = Path(path)
    if root is not None:
        check_inside(root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        (place or os.replace)(tmp, path)
        _fsync(path.parent)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, root: Path | None = None) -> Path:
    """Write one text file atomically (`atomic_path`; below ``root`` when given); returns ``path``."""
    with atomic_path(path, root=root) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: Path, data: bytes, root: Path | None = None) -> Path:
    """Write one binary file atomically (`atomic_path`; below ``root`` when given); returns ``path``."""
    with atomic_path(path, root=root) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def digest_bytes(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex."""
    return hashlib.sha256(data).hexdigest()


class DamagedFile(Exception):
    """A sealed file (`read_sealed`) that is not what was written; ``str(err)`` says why in one line."""


def sealed_header(kind: str) -> bytes:
    """How a sealed file of ``kind`` begins, before its digest."""
    return f"gramharness-{kind} sha256=".encode()


def write_sealed(path: Path, kind: str, payload: bytes, root: Path | None = None) -> Path:
    """Write ``payload`` atomically after one header line ``gramharness-<kind> sha256=<hex>``,
    so `read_sealed` can tell it from a damaged, foreign or planted file; returns ``path``."""
    return write_bytes(path, sealed_header(kind) + digest_bytes(payload).encode() + b"\n" + payload, root)


def read_sealed(path: Path, kind: str) -> bytes | None:
    """The payload of the sealed file of ``kind`` at ``path`` (`write_sealed`), None when there
    is none; `DamagedFile` when it cannot be read, has no header of this kind, or its
    payload differs from its digest."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise DamagedFile(f"cannot be read ({err.strerror or err})") from None
    header, newline, payload = raw.partition(b"\n")
    if not header.startswith(sealed_header(kind)) or not newline:
        raise DamagedFile(f"cannot be read (not a {kind} file of this harness, or one without a digest)")
    if digest_bytes(payload).encode() != header[len(sealed_header(kind)):]:
        raise DamagedFile("differs from what was written (checksum)")
    return payload


def config_key(config: Mapping[str, Any], length: int = 16) -> str:
    """A stable hash of plain configuration data (a run's identity, a setting's name):
    sorted keys, no whitespace, floats as Python writes them (so 1e-3 and 0.001 agree),
    independent of the process."""
    return digest_bytes(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())[:length]


def file_digest(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex (read in blocks: files may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the name ``path`` (a file or folder, which need not exist)
    across processes of this machine: ``fcntl.flock`` on a hidden sibling
    ``.lock-<name>``, removed by its holder on release. A waiter that wakes up holding a
    lock file its predecessor has just removed takes the new one instead, so two holders
    never overlap. A killed holder's lock is released by the kernel (its file stays, to be
    reused)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f"{LOCK_PREFIX}{path.name}"
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(lock)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the holder before us removed this one: lock the current file
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def clean_partial(root: Path, name: str | None = None) -> int:
    """Remove what killed writers left below ``root`` (only the temporary siblings of
    ``root/name`` when ``name`` is given, e.g. one run's directory among many); returns how
    many. A temporary file is a leftover when its writer was a process of this host that
    has ended, or when it is older than `STALE_AFTER_S` (writers on other hosts, unnamed
    writers)."""
    root = Path(root)
    if not root.is_dir():
        return 0
    found = root.glob(f"{TMP_PREFIX}*-{name}") if name else root.rglob(f"{TMP_PREFIX}*")
    stale = [p for p in found if _is_stale(p)]
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(stale)


def _is_stale(tmp: Path) -> bool:
    try:
        if time.time() - tmp.lstat().st_mtime > STALE_AFTER_S:
            return True
    except FileNotFoundError:  # its writer has just renamed it
        return False
    return ended(tmp.name[len(TMP_PREFIX):].partition("-")[0])


def ended(writer: str) -> bool:
    """Whether the writer named ``writer`` (`owner`: ``<host>.<pid>``) was a process of this
    host that has ended (False for a running one, another host's, or a malformed name)."""
    host, _, pid = writer.partition(".")
    if host != HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False
