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
finished (`state`) and readers skip them with a message (`scan`); so are records whose
files pass their checksums but hold what readers cannot use (object arrays, a table that is
not UTF-8 numbers, an archive that is none: `check_content`, and the loaders raise
`DamagedRecord` on them), or that lie outside the setting folder their content names (an
edited grid cell or configuration: `scan` and `state`). Everything is first
written to a hidden temporary sibling and moved into place (`core.files.atomic_path`).

A finished record (status ok or diverged) is never replaced by a crash record: `write`
checks what stands at the path right before it moves a crash record into place, under a
lock on the record's name (`core.files.file_lock`) that every writer of that record holds
while it moves, so a ``--force`` rerun whose scoring fails, or a concurrent sweep, cannot
lose a finished run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.files import TMP_PREFIX, atomic_path, config_key, file_digest, file_lock, tmp_sibling
from store.layout import cell_label, entry_id, layout_problem, missing_fields, setting_id

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
SINGLE_RUN = "train"  # the sweep of a single run (`sweeps.train`); every other sweep's records lie in setting folders
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
    sweep: str = SINGLE_RUN  # which command made it: "train", "stability", "fid", ...
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
        try:
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
        except Exception as err:  # noqa: BLE001 - re-raised, as a full disk where the writer did not say so
            full = _unsaid_full_disk(err, tmp, path)
            if full is None:
                raise
            raise full from err
    if tensorboard is not None:
        shutil.rmtree(tensorboard, ignore_errors=True)
    record.path = path
    return record


FULL_BELOW = 1 << 20  # bytes left on a file system that a failed write takes for a full disk


def _unsaid_full_disk(err: Exception, tmp: Path, path: Path) -> OSError | None:
    """An ``ENOSPC`` error naming ``path`` for a write into ``tmp`` that failed without saying
    why (numpy's short writes, ``OSError: 20000 requested and 14304 written``; torch's stream
    writer, a ``RuntimeError``) on a file system with (almost) no space left; None otherwise."""
    if isinstance(err, OSError) and err.errno is not None:
        return None
    try:
        free = os.statvfs(tmp)
    except OSError:
        return None
    if free.f_bavail * free.f_frsize >= FULL_BELOW:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


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
    data files is missing, differs from the size and checksum the record stored, or holds
    what readers cannot use (`check_content`)."""
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
        check_content(path, record.files)
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
    of another configuration is there: train), or ``"damaged: <why>"`` (train): unreadable,
    a data file differing from its checksum or holding what readers cannot use, or a
    configuration without the fields tables and folders are named by."""
    try:
        record = read(path)
    except FileNotFoundError:
        return "missing"
    except DamagedRecord as err:
        return f"damaged: {err}"
    if missing := missing_fields(record.config):
        return f"damaged: its configuration lacks fields or has them of the wrong type ({', '.join(missing)})"
    if misplaced := _misplaced(record):
        return f"damaged: {misplaced}"
    if record.key != key:
        return "replaced"
    return "finished" if record.finished else "crashed"


def _misplaced(record: Record) -> str | None:
    """Why a sweep's record does not lie in the folder of the setting its content names
    (`store.layout.sweep_dir`), e.g. its grid cell was emptied or its configuration edited,
    so no reader can find its setting; None when it does (or is a single run's)."""
    if record.sweep == SINGLE_RUN or missing_fields(record.config) or record.setting in record.path.parts[:-1]:
        return None
    return (f"it lies outside the folder of the setting its content names ({record.setting}): its grid cell or "
            "configuration was edited")


def record_dirs(root: Path) -> Iterator[Path]:
    """Every directory below ``root`` holding a ``record.json`` (``.tmp-*`` ones skipped), in
    path order. A running sweep may rename or delete folders meanwhile: one that vanishes
    during the walk is passed over (`os.walk` skips folders it cannot list)."""
    found = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(TMP_PREFIX)]
        if RECORD_FILE in files:
            found.append(Path(folder) / RECORD_FILE)
    yield from (p.parent for p in sorted(found))


def scan(root: Path, verify: bool = True) -> tuple[list[Record], list[tuple[Path, str]]]:
    """Every readable record below ``root``, and ``(path, why)`` for each one that is not
    (damaged, or outside the setting folder its content names)."""
    records, problems = [], []
    for path in record_dirs(root):
        try:
            record = read(path, verify)
        except DamagedRecord as err:
            problems.append((path, str(err)))
            continue
        except FileNotFoundError:  # removed while scanning (a concurrent writer)
            continue
        if misplaced := _misplaced(record):
            problems.append((path, misplaced))
        else:
            records.append(record)
    return records, problems


def _ema_name(name: str, suffix: str) -> str:
    """``samples.npy`` -> ``samples_ema.npy`` for ``suffix`` `EMA_SUFFIX`."""
    stem, _, ext = name.partition(".")
    return f"{stem}{suffix}.{ext}"


def load_samples(path: Path, ema: bool = False) -> np.ndarray:
    """A record's final samples: float ``(n, *x_shape)``, or uint8 images ``(n, C, H, W)``;
    with ``ema``, its EMA generator's (`engine.ema`). `DamagedRecord` when the file holds
    anything else (object arrays, no array)."""
    path, suffix = Path(path), EMA_SUFFIX if ema else ""
    floats, uint8 = path / _ema_name(SAMPLES_FILE, suffix), path / _ema_name(IMAGES_FILE, suffix)
    if floats.exists():
        with _reading(floats.name):
            return _numbers(floats.name, np.load(floats, allow_pickle=False), samples=True)
    with _reading(uint8.name), np.load(uint8, allow_pickle=False) as f:
        return _numbers(uint8.name, f["images"], samples=True)


def load_trace(path: Path) -> pd.DataFrame:
    """A record's per-step diagnostics, indexed by step; `DamagedRecord` unless it is a
    UTF-8 table of numbers with a step column."""
    return _read_table(Path(path) / TRACE_FILE).set_index("step")


def load_snapshots(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a record's ``snapshots.npz`` (see `engine.trainer.Trainer.run_snapshots`);
    `DamagedRecord` unless it is an archive of arrays of numbers."""
    file = Path(path) / SNAPSHOTS_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file} not found; train with --snapshot-steps to store snapshots")
    if not zipfile.is_zipfile(file):
        raise DamagedRecord(f"{SNAPSHOTS_FILE} cannot be read (not an .npz archive)")
    with _reading(SNAPSHOTS_FILE), np.load(file, allow_pickle=False) as z:
        return {k: _numbers(f"{SNAPSHOTS_FILE}[{k}]", z[k]) for k in z.files}


def load_curves(path: Path) -> pd.DataFrame | None:
    """A record's metrics over training steps (one row per evaluated step), or None when
    it was trained without ``--eval-every``; `DamagedRecord` unless it is a UTF-8 table with
    a step column of numbers."""
    file = Path(path) / CURVES_FILE
    return _read_table(file) if file.exists() else None


# --- content: files that pass their checksum but hold something else ------------------------

READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError)


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn what reading the data file ``name`` raises into a one-line `DamagedRecord`
    (a missing file stays a ``FileNotFoundError``)."""
    try:
        yield
    except (FileNotFoundError, DamagedRecord):
        raise
    except READ_ERRORS as err:
        why = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise DamagedRecord(f"{name} cannot be read ({why})") from None


def _numbers(name: str, array: Any, samples: bool = False) -> np.ndarray:
    """``array``, unless it is no array of numbers (or, for ``samples``, has no sample axis)."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise DamagedRecord(f"{name} holds {kind} values, not numbers")
    if samples and array.ndim < 2:
        raise DamagedRecord(f"{name} holds an array of shape {array.shape}, not samples")
    return array


NUMBERS_ONLY = (TRACE_FILE,)  # tables of numbers alone; the others (metrics over steps) may hold words too


def _read_table(file: Path) -> pd.DataFrame:
    """A UTF-8 CSV table with a ``step`` column of numbers (every column, for `NUMBERS_ONLY`
    tables), or `DamagedRecord`."""
    with _reading(file.name):
        table = pd.read_csv(file, encoding="utf-8")
    if "step" not in table.columns:
        raise DamagedRecord(f"{file.name} has no step column")
    checked = table.columns if file.name in NUMBERS_ONLY else ["step"]
    text = [str(c) for c in checked if len(table) and not _numeric(table[c])]
    if text:
        raise DamagedRecord(f"{file.name} holds values that are not numbers (column {text[0][:40]!r})")
    return table


def _numeric(column: pd.Series) -> bool:
    """Numbers, or yes/no flags (a flag column with gaps reads as objects)."""
    return pd.api.types.is_numeric_dtype(column) or all(isinstance(v, (bool, np.bool_)) for v in column.dropna())


def _npy_dtype(name: str, f: Any) -> None:
    """Check the header of the ``.npy`` stream ``f``: an array of numbers (its data is not read)."""
    fmt = np.lib.format
    header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
    dtype = header(f)[2]
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DamagedRecord(f"{name} holds {dtype} values, not numbers")


def check_content(path: Path, names: Iterable[str]) -> None:
    """`DamagedRecord` (one line) when a data file of the record at ``path`` holds what its
    readers cannot use though its checksum holds: arrays of objects or of no numbers, an
    archive that is none, a table that is not UTF-8 or has no step column of numbers (a trace:
    a column of anything but numbers). Reads the
    tables and the arrays' headers, not the arrays."""
    for name in names:
        file = Path(path) / name
        if name.endswith(".csv"):
            _read_table(file)
        elif name.endswith(".npy"):
            with _reading(name), open(file, "rb") as f:
                _npy_dtype(name, f)
        elif name.endswith(".npz"):
            if not zipfile.is_zipfile(file):
                raise DamagedRecord(f"{name} cannot be read (not an .npz archive)")
            with _reading(name), zipfile.ZipFile(file) as z:
                for member in z.namelist():
                    with z.open(member) as f:
                        _npy_dtype(f"{name}[{member.removesuffix('.npy')}]", f)
