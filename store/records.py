"""Records: the one owner of how a run's result lives on disk.

A record is a directory, written atomically (it exists complete or not at all)::

    record.json         the typed `Record`: format version, the complete resolved configuration
                        and its key, the grid cell, status, metrics and how they were scored,
                        the objective's and the metrics' self-descriptions, cost, provenance, and the size and
                        SHA-256 of every data file
    samples.npy         final samples, float32 (n_samples, *x_shape)          (toy data)
    samples_uint8.npz   final samples as uint8 images, key "images"           (image data)
    trace.csv           per-step diagnostics (one row per generator step)
    generator.pt        the run's generator weights (a 1-run stacked network state dict)
    snapshots.npz       samples and features at chosen steps (when asked for)
    metrics_over_steps.csv  metrics of a fixed-noise sample every N steps (``--eval-every``)
    *.png, *.pdf        figures (not checksummed: a figure can be redrawn, a result cannot)
    tensorboard/        the live view's event files (``--tensorboard``; not checksummed either)

A record's identity is the hash of its complete configuration (`engine.config.config_key`);
where sweeps keep it is `store.layout`. Records of an older format are never taken as
finished (`state`) and readers skip them with a message (`scan`). Everything is first
written to a hidden temporary sibling and moved into place (`core.files.atomic_path`).

A finished record (status ok or diverged) is never replaced by a crash record: `write`
checks what stands at the path right before it moves a crash record into place, under a
lock on the record's name (`core.files.file_lock`) that every writer of that record holds
while it moves, so a ``--force`` rerun whose scoring fails, or a concurrent sweep, cannot
lose a finished run.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.files import TMP_PREFIX, atomic_path, config_key, file_digest, file_lock, tmp_sibling
from store.layout import cell_label, entry_id, layout_problem, setting_id

FORMAT = 2  # bump when the layout or the meaning of a field changes
RECORD_FILE = "record.json"
SAMPLES_FILE = "samples.npy"
IMAGES_FILE = "samples_uint8.npz"
EMA_SUFFIX = "_ema"  # the EMA generator's samples (engine.ema): samples_ema.npy, samples_uint8_ema.npz
TRACE_FILE = "trace.csv"
GENERATOR_FILE = "generator.pt"
SNAPSHOTS_FILE = "snapshots.npz"
CURVES_FILE = "metrics_over_steps.csv"
TENSORBOARD_DIR = "tensorboard"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
FINISHED = ("ok", "diverged")  # statuses that count as done; "crashed" records are retried


class DamagedRecord(Exception):
    """A record directory that cannot be trusted; ``str(err)`` says why in one line."""


class FinishedRecordStands(FileExistsError):
    """A crash record was not written: a finished record stands at its path and is kept."""


@dataclass
class Record:
    """One run's result. ``config`` is the complete `engine.config.RunConfig` as plain data."""

    config: dict[str, Any]
    status: str  # "ok", "diverged" or "crashed"
    sweep: str = "train"  # which command made it: "train", "stability", "fid", ...
    axes: dict[str, Any] = field(default_factory=dict)  # the grid cell (empty for a single run)
    reason: str | None = None
    diverged_at: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)  # how metrics were made (e.g. the FID extractor)
    objective: dict[str, Any] = field(default_factory=dict)  # `Objective.describe()`
    metric_info: dict[str, Any] = field(default_factory=dict)  # `metrics.catalog.describe(metrics)`
    run: dict[str, Any] = field(default_factory=dict)  # device, wall time, stack, peak memory
    traceback: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"bytes", "sha256"}
    format: int = FORMAT
    key: str = ""
    path: Path | None = field(default=None, compare=False)  # where it was read from (not stored)

    def __post_init__(self) -> None:
        self.key = self.key or config_key(self.config)

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def display_name(self) -> str:
        return self.objective.get("display_name") or self.model

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def setting(self) -> str:
        return setting_id(self.config, self.axes)

    @property
    def entry(self) -> str:
        return entry_id(self.config, self.axes)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        del d["path"]
        return _jsonable(d)

    def row(self) -> dict[str, Any]:
        """One flat row for tables: config fields, hyperparameters, the cell, status, metrics,
        and the ``setting``/``entry`` that group records of one configuration."""
        cfg = dict(self.config)
        hp = cfg.pop("hp", {})
        flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in {**cfg, **hp}.items()}
        return {**flat, **self.axes, "cell": cell_label(self.axes), "status": self.status, "reason": self.reason,
                "display_name": self.display_name, "setting": self.setting, "entry": self.entry,
                "wall_time_s": self.run.get("wall_time_s"), **self.metrics, "path": str(self.path)}


# --- writing ------------------------------------------------------------------------------

def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _digest(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": file_digest(path)}


def write(path: Path, record: Record, *, samples: np.ndarray | None = None, images: np.ndarray | None = None,
          samples_ema: np.ndarray | None = None, images_ema: np.ndarray | None = None,
          trace: pd.DataFrame | None = None, generator: dict | None = None,
          snapshots: Mapping[str, np.ndarray] | None = None, curves: pd.DataFrame | None = None,
          tensorboard: Path | None = None, extra: Callable[[Path], None] | None = None) -> Record:
    """Atomically (re)place the record directory ``path`` with ``record`` and its files;
    ``curves`` are the metrics over training steps, ``tensorboard`` a live folder
    (`store.layout.live_dir`) copied in as ``tensorboard/`` and removed once the record is in
    place; ``extra(tmp_dir)`` may add more (figures). Returns the record as stored."""
    path = Path(path)
    with atomic_path(path, directory=True, place=_placer(record)) as tmp:
        for suffix, floats, uint8 in (("", samples, images), (EMA_SUFFIX, samples_ema, images_ema)):
            if floats is not None:
                np.save(tmp / _ema_name(SAMPLES_FILE, suffix), np.asarray(floats, dtype=np.float32))
            if uint8 is not None:
                np.savez_compressed(tmp / _ema_name(IMAGES_FILE, suffix), images=np.asarray(uint8, dtype=np.uint8))
        if trace is not None:
            trace.to_csv(tmp / TRACE_FILE, index_label="step")
        if generator is not None:
            import torch  # only where a generator is saved: reading records needs no torch
            torch.save(generator, tmp / GENERATOR_FILE)
        if snapshots:
            np.savez_compressed(tmp / SNAPSHOTS_FILE, **snapshots)
        if curves is not None:
            curves.to_csv(tmp / CURVES_FILE, index=False)
        if tensorboard is not None and Path(tensorboard).is_dir():
            shutil.copytree(tensorboard, tmp / TENSORBOARD_DIR)
        if extra is not None:
            extra(tmp)
        record.files = {p.name: _digest(p) for p in sorted(tmp.iterdir())
                        if p.is_file() and p.suffix not in FIGURE_SUFFIXES}
        (tmp / RECORD_FILE).write_text(json.dumps(record.to_json(), indent=2))
    if tensorboard is not None:
        shutil.rmtree(tensorboard, ignore_errors=True)
    record.path = path
    return record


def update(path: Path, **fields: Any) -> Record:
    """Atomically replace fields of the record at ``path`` (e.g. ``metrics``, ``scoring``
    after rescoring): its files are linked (or copied) into a temporary sibling, a new
    ``record.json`` is written there and the sibling renamed into place, so readers see
    the old record or the new one. The data files stay as they are, and so do their
    checksums. Returns the record as stored."""
    path = Path(path)
    record = dataclasses.replace(read(path), **fields)
    with atomic_path(path, directory=True, place=_placer(record)) as tmp:
        shutil.copytree(path, tmp, copy_function=_link_or_copy, dirs_exist_ok=True)
        (tmp / RECORD_FILE).unlink()
        (tmp / RECORD_FILE).write_text(json.dumps(record.to_json(), indent=2))
    record.path = path
    return record


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _placer(record: Record) -> Callable[[Path, Path], None]:
    """How ``record``, written at a temporary sibling, goes into place at its path: under the
    record's lock, and (when it is not finished) only where no finished record stands, checked
    right before the move."""
    def place(tmp: Path, path: Path) -> None:
        with file_lock(path):
            if not record.finished and _finished_at(path):
                raise FinishedRecordStands(errno.EEXIST, "a finished record stands there and is kept", str(path))
            _move_into_place(tmp, path)
    return place


def _finished_at(path: Path) -> bool:
    """Whether a finished record stands at ``path`` (an intact one: a damaged record is
    trained again anyway, see `state`)."""
    try:
        return read(path).finished
    except (FileNotFoundError, DamagedRecord):
        return False


def _move_into_place(tmp: Path, path: Path, attempts: int = 20) -> None:
    """Rename ``tmp`` to ``path``, moving an existing record aside first. Writers of one
    machine take turns (`_placer` holds the record's lock); should writers of several
    machines meet, the last complete record wins and neither fails."""
    for _ in range(attempts):
        try:
            tmp.rename(path)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        old = tmp_sibling(path)
        try:
            path.rename(old)
        except FileNotFoundError:
            continue
        shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"could not move the record into {path}: another writer keeps replacing it")


# --- reading ------------------------------------------------------------------------------

def read(path: Path, verify: bool = True) -> Record:
    """The record in directory ``path``. Raises ``FileNotFoundError`` when there is none and
    `DamagedRecord` when it is unreadable, of another format, or (with ``verify``) one of its
    data files is missing or differs from the size and checksum the record stored."""
    path = Path(path)
    try:
        raw = (path / RECORD_FILE).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DamagedRecord(f"{RECORD_FILE} cannot be read ({err.strerror})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedRecord(f"{RECORD_FILE} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format", 1) if isinstance(data, dict) else "unknown"
        raise DamagedRecord(f"written in record format {found}, this version reads format {FORMAT}")
    try:
        record = Record(**data, path=path)
    except TypeError as err:
        raise DamagedRecord(f"{RECORD_FILE} has unexpected fields ({err})") from None
    _check_fields(record)
    if record.key != config_key(record.config):
        raise DamagedRecord("its key does not match its configuration")
    if verify:
        for name, expected in record.files.items():
            file = path / name
            if not file.is_file():
                raise DamagedRecord(f"{name} is missing")
            if file.stat().st_size != expected["bytes"] or _digest(file) != expected:
                raise DamagedRecord(f"{name} differs from what was written (size or checksum)")
    return record


def _check_fields(record: Record) -> None:
    """`DamagedRecord` unless the fields readers rely on have their types."""
    typed = {"config": dict, "status": str, "axes": dict, "metrics": dict, "scoring": dict, "objective": dict,
             "run": dict, "provenance": dict, "files": dict, "key": str}
    wrong = [name for name, kind in typed.items() if not isinstance(getattr(record, name), kind)]
    if not all(isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
               for f in (record.files.values() if isinstance(record.files, dict) else ())):
        wrong.append("files")
    if wrong:
        raise DamagedRecord(f"{RECORD_FILE} has fields of the wrong type ({', '.join(dict.fromkeys(wrong))})")
    problem = layout_problem(record.config, record.axes, record.files)
    if problem:
        raise DamagedRecord(problem)


def state(path: Path, key: str) -> str:
    """What a sweep should do about the record that should be at ``path`` with ``key``:
    ``"finished"`` (skip), ``"missing"`` or ``"crashed"`` (train), ``"replaced"`` (a record
    of another configuration is there: train), or ``"damaged: <why>"`` (train)."""
    try:
        record = read(path)
    except FileNotFoundError:
        return "missing"
    except DamagedRecord as err:
        return f"damaged: {err}"
    if record.key != key:
        return "replaced"
    return "finished" if record.finished else "crashed"


def record_dirs(root: Path) -> Iterator[Path]:
    """Every directory below ``root`` holding a ``record.json`` (``.tmp-*`` ones skipped)."""
    for p in sorted(Path(root).rglob(RECORD_FILE)):
        if not any(part.startswith(TMP_PREFIX) for part in p.relative_to(root).parts):
            yield p.parent


def scan(root: Path, verify: bool = True) -> tuple[list[Record], list[tuple[Path, str]]]:
    """Every readable record below ``root``, and ``(path, why)`` for each one that is not."""
    records, problems = [], []
    for path in record_dirs(root):
        try:
            records.append(read(path, verify))
        except DamagedRecord as err:
            problems.append((path, str(err)))
        except FileNotFoundError:  # removed while scanning (a concurrent writer)
            pass
    return records, problems


def _ema_name(name: str, suffix: str) -> str:
    """``samples.npy`` -> ``samples_ema.npy`` for ``suffix`` `EMA_SUFFIX`."""
    stem, _, ext = name.partition(".")
    return f"{stem}{suffix}.{ext}"


def load_samples(path: Path, ema: bool = False) -> np.ndarray:
    """A record's final samples: float ``(n, *x_shape)``, or uint8 images ``(n, C, H, W)``;
    with ``ema``, its EMA generator's (`engine.ema`)."""
    path, suffix = Path(path), EMA_SUFFIX if ema else ""
    if (path / _ema_name(SAMPLES_FILE, suffix)).exists():
        return np.load(path / _ema_name(SAMPLES_FILE, suffix))
    with np.load(path / _ema_name(IMAGES_FILE, suffix)) as f:
        return f["images"]


def load_trace(path: Path) -> pd.DataFrame:
    """A record's per-step diagnostics, indexed by step."""
    return pd.read_csv(Path(path) / TRACE_FILE, index_col="step")


def load_snapshots(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a record's ``snapshots.npz`` (see `engine.trainer.Trainer.run_snapshots`)."""
    file = Path(path) / SNAPSHOTS_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file} not found; train with --snapshot-steps to store snapshots")
    with np.load(file) as z:
        return {k: z[k] for k in z.files}


def load_curves(path: Path) -> pd.DataFrame | None:
    """A record's metrics over training steps (one row per evaluated step), or None when
    it was trained without ``--eval-every``."""
    file = Path(path) / CURVES_FILE
    return pd.read_csv(file) if file.exists() else None
