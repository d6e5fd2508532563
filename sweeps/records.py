"""Run records on disk, written atomically: a record directory exists complete or not at all.

Layout of one record directory::

    record.json    config, seed, status (+ reason), metrics, device, wall time, provenance
    samples.npy    final generator samples (n_samples x *x_shape, float32)
    trace.csv      per-step diagnostics (one row per generator step)
    generator.pt   the run's generator weights (a 1-run stacked network state dict)
    *.png          figures added by the caller (e.g. the single run's scatter plot)

Everything is first written to a hidden ``.tmp-*`` sibling and then renamed into place, so a
process killed at any moment leaves either the finished record or a ``.tmp-*`` directory
that readers ignore and `clean_partial` removes.
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

RECORD_FILE = "record.json"
FINISHED = ("ok", "diverged")  # statuses that count as done; "crashed" records are retried


def provenance() -> dict[str, Any]:
    """How a result was made: command line, versions, host, git commit, time."""
    versions = {}
    for pkg in ("gramharness", "numpy", "pandas", "joblib", "torch-fidelity"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["torch"] = torch.__version__  # with the build tag (+cpu, +cu132, ...)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"command": sys.argv, "python": platform.python_version(), "versions": versions,
            "host": platform.node(), "platform": platform.platform(), "git_commit": commit,
            "torch_threads": torch.get_num_threads(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_record(path: Path, record: dict[str, Any], samples: np.ndarray | None = None,
                 trace: pd.DataFrame | None = None, generator_state: dict | None = None,
                 extra: Callable[[Path], None] | None = None) -> Path:
    """Atomically (re)place the record directory ``path``; ``extra(tmp_dir)`` may add files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if samples is not None:
            np.save(tmp / "samples.npy", np.asarray(samples, dtype=np.float32))
        if trace is not None:
            trace.to_csv(tmp / "trace.csv", index_label="step")
        if generator_state is not None:
            torch.save(generator_state, tmp / "generator.pt")
        if extra is not None:
            extra(tmp)
        (tmp / RECORD_FILE).write_text(json.dumps(_jsonable(record), indent=2))
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _move_into_place(tmp: Path, path: Path, attempts: int = 20) -> None:
    """Rename ``tmp`` to ``path``, moving an existing record aside first. Safe against a
    concurrent writer of the same record (an orphaned worker of a killed sweep finishing
    while a rerun writes too): the last complete record wins, neither writer fails."""
    for _ in range(attempts):
        try:
            tmp.rename(path)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        old = path.parent / f".tmp-old-{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            path.rename(old)
        except FileNotFoundError:
            continue
        shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"could not move the record into {path}: another writer keeps replacing it")


def read_record(path: Path) -> dict[str, Any] | None:
    """The ``record.json`` of a record directory, or None if there is no complete record."""
    try:
        return json.loads((Path(path) / RECORD_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(path: Path) -> bool:
    """True when ``path`` holds a complete record of a run that needs no retry."""
    rec = read_record(path)
    return rec is not None and rec.get("status") in FINISHED


def iter_records(root: Path) -> list[Path]:
    """Every complete record directory below ``root`` (partial ``.tmp-*`` ones skipped)."""
    return sorted(p.parent for p in Path(root).rglob(RECORD_FILE)
                  if not any(part.startswith(".tmp-") for part in p.parts))


def clean_partial(root: Path) -> int:
    """Remove ``.tmp-*`` leftovers of killed writers below ``root``; returns how many."""
    root = Path(root)
    if not root.exists():
        return 0
    stale = [p for p in root.rglob(".tmp-*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def describe(result: dict[str, Any], metrics_text: Callable[[dict[str, Any]], str]) -> str:
    """One progress line for a finished cell: its status, ``metrics_text(metrics)`` when it
    has metrics, and the reason when it did not finish normally."""
    text = result["status"]
    if result["metrics"]:
        text += ", " + metrics_text(result["metrics"])
    if result["reason"]:
        text += f" ({result['reason']})"
    return text


def ensure_writable(root: Path) -> None:
    """Raise ``PermissionError`` unless files can be created below ``root``."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".tmp-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write to output root {root}: {err.strerror or err}") from None
