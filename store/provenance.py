"""How a result was made: command line, versions, host, time, and the code that ran (the git
commit and the files that differed from it).

The code is read from git once per process, on the first request (`source`; a command
asks at its start), never at import, and kept: a long sweep stamps every record with the
commit it started with, not with commits made while it trained. The answer travels to
worker processes in each task (`sweeps.worker.Task.source`), and a worker `adopt`s it, so
its records name the same commit as the command that started them.
"""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """The code a process runs: its git commit (None outside git) and the paths that
    differed from it, uncommitted or untracked (None when git could not say)."""

    commit: str | None
    dirty: tuple[str, ...] | None


_SOURCE: Source | None = None  # this process's answer, once asked (or adopted)


def source() -> Source:
    """The code this process runs, read from git on the first call and the same ever after
    (or the answer a parent process handed to this one, see `adopt`)."""
    global _SOURCE
    if _SOURCE is None:
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "-z")
        _SOURCE = Source((commit.strip() or None) if commit else None,
                         None if status is None else tuple(dirty_paths(status)))
    return _SOURCE


def adopt(found: Source) -> None:
    """Name ``found`` (the command's `source`, carried by a task) as this worker process's
    code, so its records name the commit the command started with."""
    global _SOURCE
    _SOURCE = found


def dirty_paths(porcelain: str) -> list[str]:
    """The paths of ``git status --porcelain -z`` output (a renamed file by its new name)."""
    entries, paths, i = porcelain.split("\0"), [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) > 3:
            paths.append(entry[3:])
            if "R" in entry[:2] or "C" in entry[:2]:
                i += 1  # the next entry is the path it was renamed or copied from
    return paths


def _git(*args: str) -> str | None:
    """Output of a git command run in this source tree, or None when git cannot answer."""
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """How a result was made: command line, versions, host, time, and the code (`source`):
    ``git_commit``, ``git_dirty`` (whether files differed from it) and ``git_dirty_files``
    (which)."""
    versions = {}
    for pkg in ("gramharness", "numpy", "pandas", "joblib", "torch-fidelity"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    import torch  # provenance is asked where runs train or are scored, which import torch anyway

    from core import allocator, blas
    versions["torch"] = torch.__version__  # with the build tag (+cpu, +cu132, ...)
    code = source()
    known = code.commit is not None and code.dirty is not None
    return {"command": sys.argv, "python": platform.python_version(), "versions": versions,
            "host": platform.node(), "platform": platform.platform(), "git_commit": code.commit,
            "git_dirty": bool(code.dirty) if known else None,
            "git_dirty_files": list(code.dirty) if known else None,
            "torch_threads": torch.get_num_threads(), "blas": blas.STATUS, "malloc": allocator.STATUS,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
