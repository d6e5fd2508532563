"""Checks of where a command will write, made before it does any work: a command refused for
bad input leaves nothing behind, and a name too long for the file system is said up front
rather than after hours of training."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from core.files import TMP_OVERHEAD, TMP_PREFIX
from store.records import RECORD_FILE


def _name_max(existing: Path) -> int:
    try:
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_names(path: Path) -> None:
    """Raise ``PermissionError`` when the last name of ``path``, or one that does not exist
    yet, is too long for the file system once written through a temporary sibling
    (`core.files.TMP_OVERHEAD`)."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    limit = _name_max(existing if existing.is_dir() else existing.parent) - TMP_OVERHEAD
    for part in {*path.relative_to(existing).parts, path.name}:
        if len(os.fsencode(part)) > limit:
            raise PermissionError(f"cannot write below {existing}: the name {part[:24]}... is too long "
                                  f"({len(os.fsencode(part))} bytes; at most {limit} here)")


def ensure_writable(root: Path) -> None:
    """Raise ``PermissionError`` unless ``root`` is (or can become) a writable directory whose
    names all fit the file system. Creates nothing: a command refused for bad input leaves
    no output behind."""
    root = Path(root)
    existing = next(p for p in (root.absolute(), *root.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise PermissionError(f"cannot write to output root {root}: {existing} is a file, not a directory")
    check_names(root)
    probe = existing / f"{TMP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:  # what creating the output would do, undone at once
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        raise PermissionError(f"cannot write to output root {root}: {err.strerror or err}") from None


def ensure_record_target(path: Path) -> None:
    """Raise ``PermissionError`` unless a record can be written at ``path``
    (`store.records.write`): its parent is writable (`ensure_writable`) and ``path`` does
    not exist, is empty, or holds a record, which the new one replaces. Any other file or
    directory there is the user's: writing would replace it, so it is refused. Creates
    nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PermissionError(f"cannot write a record at {path}: it is a file")
    ensure_writable(path.parent)
    check_names(path)
    if path.is_dir() and not (path / RECORD_FILE).is_file() and any(path.iterdir()):
        raise PermissionError(f"{path} exists and is not a record directory; choose another --out "
                              f"(a record replaces what is there)")
