"""Checks of where a command will write, made before it does any work: a command refused for
bad input leaves nothing behind, and a name too long for the file system is said up front
rather than after hours of training."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from core.files import TMP_OVERHEAD, TMP_PREFIX


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
