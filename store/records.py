"""The record store: the one owner of how a run's result lives on disk.

A record is a directory, written atomically (it exists complete or not at all)::

    record.json         the typed `Record`: format version, the complete resolved configuration
                        and its key, the grid cell, status, metrics and how they were scored,
                        the objective's self-description, cost, provenance, and the size and
                        SHA-256 of every data file
    samples.npy         final samples, float32 (n_samples, *x_shape)          (toy data)
    samples_uint8.npz   final samples as uint8 images, key "images"           (image data)
    trace.csv           per-step diagnostics (one row per generator step)
    generator.pt        the run's generator weights (a 1-run stacked network state dict)
    snapshots.npz       samples and features at chosen steps (when asked for)
    metrics_over_steps.csv  metrics of a fixed-noise sample every N steps (``--eval-every``)
    *.png, *.pdf        figures (not checksummed: a figure can be redrawn, a result cannot)
    tensorboard/        the live view's event files (``--tensorboard``; not checksummed either)

A record's identity is the hash of its complete configuration (`engine.config.config_key`).
Sweeps keep their records at a path made from that configuration (`sweep_dir`)::

    <root>/<sweep>/<setting>/<dataset>/<entry>/<cell>/seed<k>/

- ``setting``: what every run of one experiment shares (steps, batch, samples, ... and the
  names of the grid's axes), e.g. ``steps10500_batch200_3fa9c2``;
- ``entry``: the objective and a hash of its hyperparameters outside the grid, e.g.
  ``gram_4f5e6d`` (a ``--set`` makes a new entry, never overwrites another);
- ``cell``: the grid point, e.g. ``noise_dim=2_width=20``.

So runs of different configurations never share a directory, a rerun finds exactly its
own records, and tables group records by setting and entry (`Record.row`). Records of an
older format are never taken as finished (`state`) and readers skip them with a message
(`scan`). Everything is first written to a hidden ``.tmp-<host>.<pid>-*`` sibling and
renamed into place; `clean_partial` removes what a killed writer left (never the
temporary files of a writer that is still running).

While a stack trains, two kinds of files live outside the records (paths from here):
its checkpoint (`stack_checkpoint`: ``<setting>/.checkpoints/<hash of the members' keys>.pt``;
`run_checkpoint` for a single run: ``<parent of --out>/.checkpoints/<name>-<key>.pt``),
written atomically and removed once the records are written, and each run's live
TensorBoard folder (`live_dir`: a hidden ``.live-seed<k>`` sibling of the record), which
`write` copies into the record as ``tensorboard/``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.config import config_key

FORMAT = 2  # bump when the layout or the meaning of a field changes
TMP_PREFIX = ".tmp-"
TMP_OVERHEAD = 40  # characters a temporary sibling adds to a name: prefix, host, pid, random tag
STALE_AFTER_S = 3600  # a temporary file this old is a leftover whoever wrote it (writes take seconds)
_HOST = hashlib.sha256(platform.node().encode()).hexdigest()[:6]
RECORD_FILE = "record.json"
SAMPLES_FILE = "samples.npy"
IMAGES_FILE = "samples_uint8.npz"
EMA_SUFFIX = "_ema"  # the EMA generator's samples (engine.ema): samples_ema.npy, samples_uint8_ema.npz
TRACE_FILE = "trace.csv"
GENERATOR_FILE = "generator.pt"
SNAPSHOTS_FILE = "snapshots.npz"
CURVES_FILE = "metrics_over_steps.csv"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = ".checkpoints"
LIVE_PREFIX = ".live-"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
FINISHED = ("ok", "diverged")  # statuses that count as done; "crashed" records are retried
SHARED_EXCLUDED = ("model", "dataset", "seed", "hp", "objective_version")  # config fields not part of a setting


class DamagedRecord(Exception):
    """A record directory that cannot be trusted; ``str(err)`` says why in one line."""


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


# --- paths --------------------------------------------------------------------------------

def cell_label(axes: Mapping[str, Any]) -> str:
    """``{"noise_dim": 4, "width": 100}`` -> ``"noise_dim=4_width=100"`` (a directory name)."""
    def fmt(v: Any) -> str:
        return "-".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
    return "_".join(f"{k}={fmt(v)}" for k, v in axes.items()) or "default"


def setting_id(config: Mapping[str, Any], axes: Mapping[str, Any]) -> str:
    """What every run of one experiment shares: the config outside the grid, the objective
    and its hyperparameters, plus the grid's axis names, e.g. ``steps10500_batch200_3fa9c2``."""
    shared = {k: v for k, v in config.items() if k not in SHARED_EXCLUDED and k not in axes}
    digest = config_key({"shared": shared, "axes": sorted(axes)}, 6)
    return f"steps{config['steps']}_batch{config['batch']}_{digest}"


def entry_id(config: Mapping[str, Any], axes: Mapping[str, Any]) -> str:
    """The objective, its version and its hyperparameters outside the grid, e.g. ``gram_4f5e6d``."""
    hp = {k: v for k, v in dict(config.get("hp", {})).items() if k not in axes}
    return f"{config['model']}_{config_key({'hp': hp, 'version': config.get('objective_version')}, 6)}"


def dataset_dir(name: str) -> str:
    """A directory name for a data set: ``cifar10`` -> ``cifar10``; ``folder:/a/b`` -> ``folder-b-<hash>``."""
    if all(c.isalnum() or c in "._-" for c in name):
        return name
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name.split(":", 1)[-1]).name).strip("_")
    return f"{name.split(':', 1)[0]}-{stem or 'data'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def setting_dir(root: Path, sweep: str, config: Mapping[str, Any], axes: Mapping[str, Any]) -> Path:
    """The directory of one experiment's records (and its tables and figures)."""
    return Path(root) / sweep / setting_id(config, axes)


def sweep_dir(root: Path, sweep: str, config: Mapping[str, Any], axes: Mapping[str, Any]) -> Path:
    """Where a sweep keeps the record of ``config`` (plain data) at grid cell ``axes``."""
    return (setting_dir(root, sweep, config, axes) / dataset_dir(config["dataset"])
            / entry_id(config, axes) / cell_label(axes) / f"seed{config['seed']}")


def stack_checkpoint(record: Path, members: Sequence[str]) -> Path:
    """The checkpoint of a sweep's stack: in the setting directory of its record ``record``
    (any member's), named by a hash of its members' configuration keys (stacks are a
    pure function of the grid, so a rerun finds it)."""
    return Path(record).parents[3] / CHECKPOINT_DIR / f"{config_key({'members': list(members)})}.pt"


def run_checkpoint(out: Path, key: str) -> Path:
    """The checkpoint of the single run of configuration ``key`` recorded at ``out``."""
    return Path(out).parent / CHECKPOINT_DIR / f"{Path(out).name}-{key}.pt"


def live_dir(record: Path) -> Path:
    """Where a run's TensorBoard event files grow while it trains (a hidden sibling of its
    record; `write` copies it into the record as ``tensorboard/``)."""
    return Path(record).parent / f"{LIVE_PREFIX}{Path(record).name}"


def setting_dir_of(record: Record) -> Path:
    """The setting directory a sweep's record was read from (see `setting_dir`)."""
    return next(p for p in record.path.parents if p.name == record.setting)


# --- writing ------------------------------------------------------------------------------

def provenance() -> dict[str, Any]:
    """How a result was made: command line, versions, host, the git commit and whether the
    working tree had uncommitted changes when this process started, time."""
    versions = {}
    for pkg in ("gramharness", "numpy", "pandas", "joblib", "torch-fidelity"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["torch"] = torch.__version__  # with the build tag (+cpu, +cu132, ...)
    commit, dirty = _SOURCE
    return {"command": sys.argv, "python": platform.python_version(), "versions": versions,
            "host": platform.node(), "platform": platform.platform(), "git_commit": commit or None,
            "git_dirty": None if dirty is None or not commit else bool(dirty),
            "torch_threads": torch.get_num_threads(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _git(*args: str) -> str | None:
    """Output of a git command run in this source tree, or None when git cannot answer."""
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


# The commit and working-tree state when this process imported the harness: the code it runs.
# Asked again at each record, a sweep would stamp records with commits made while it trained.
_SOURCE = (_git("rev-parse", "HEAD"), _git("status", "--porcelain"))


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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _tmp_sibling(path: Path) -> Path:
    """A hidden temporary sibling of ``path`` named after its writer (host and process), so
    `clean_partial` can tell a killed writer's leftovers from a running writer's files."""
    return path.parent / f"{TMP_PREFIX}{_owner()}-{uuid.uuid4().hex[:8]}-{path.name}"


def _owner() -> str:
    return f"{_HOST}.{os.getpid()}"


def write(path: Path, record: Record, *, samples: np.ndarray | None = None, images: np.ndarray | None = None,
          samples_ema: np.ndarray | None = None, images_ema: np.ndarray | None = None,
          trace: pd.DataFrame | None = None, generator: dict | None = None,
          snapshots: Mapping[str, np.ndarray] | None = None, curves: pd.DataFrame | None = None,
          tensorboard: Path | None = None, extra: Callable[[Path], None] | None = None) -> Record:
    """Atomically (re)place the record directory ``path`` with ``record`` and its files;
    ``curves`` are the metrics over training steps, ``tensorboard`` a live folder (`live_dir`)
    copied in as ``tensorboard/`` and removed once the record is in place; ``extra(tmp_dir)``
    may add more (figures). Returns the record as stored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    tmp.mkdir()
    try:
        for suffix, floats, uint8 in (("", samples, images), (EMA_SUFFIX, samples_ema, images_ema)):
            if floats is not None:
                np.save(tmp / _ema_name(SAMPLES_FILE, suffix), np.asarray(floats, dtype=np.float32))
            if uint8 is not None:
                np.savez_compressed(tmp / _ema_name(IMAGES_FILE, suffix), images=np.asarray(uint8, dtype=np.uint8))
        if trace is not None:
            trace.to_csv(tmp / TRACE_FILE, index_label="step")
        if generator is not None:
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
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    tmp = _tmp_sibling(path)
    try:
        shutil.copytree(path, tmp, copy_function=_link_or_copy)
        (tmp / RECORD_FILE).unlink()
        (tmp / RECORD_FILE).write_text(json.dumps(record.to_json(), indent=2))
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record.path = path
    return record


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


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
        old = _tmp_sibling(path)
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
        if not any(part.startswith(".tmp-") for part in p.relative_to(root).parts):
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


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be read; ``str(err)`` says why in one line."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> Path:
    """Write a training checkpoint atomically (a temporary sibling, then a rename): a kill at
    any moment leaves the previous checkpoint or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        torch.save(dict(state), tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors on the CPU), None when there is none; raises
    `DamagedCheckpoint` when it cannot be read."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in many ways
        raise DamagedCheckpoint(f"cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
                                if str(err) else f"cannot be read ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint("is not a checkpoint of this harness")
    return state


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint (and its folder once empty)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def write_text(path: Path, text: str) -> Path:
    """Write one text file atomically (a temporary sibling, then a rename): readers see the
    old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --- housekeeping -------------------------------------------------------------------------

def clean_partial(root: Path, name: str | None = None) -> int:
    """Remove what killed writers left below ``root`` (only the temporary siblings of
    ``root/name`` when ``name`` is given, e.g. one run's directory among many); returns how
    many. A temporary file is a leftover when its writer was a process of this host that
    has ended, or when it is older than an hour (writers on other hosts, unnamed writers)."""
    root = Path(root)
    if not root.is_dir():
        return 0
    found = root.glob(f"{TMP_PREFIX}*-{name}") if name else root.rglob(f"{TMP_PREFIX}*")
    stale = [p for p in found if _is_stale(p)]
    for p in stale:
        if p.is_dir():
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
    host, _, pid = tmp.name[len(TMP_PREFIX):].partition("-")[0].partition(".")
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def _name_max(existing: Path) -> int:
    try:
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_names(path: Path) -> None:
    """Raise ``PermissionError`` when the last name of ``path``, or one that does not exist
    yet, is too long for the file system once written through a temporary sibling
    (`TMP_OVERHEAD`)."""
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
    """Raise ``PermissionError`` unless a record can be written at ``path`` (`write`): its
    parent is writable (`ensure_writable`) and ``path`` does not exist, is empty, or holds a
    record, which the new one replaces. Any other file or directory there is the user's:
    writing would replace it, so it is refused. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PermissionError(f"cannot write a record at {path}: it is a file")
    ensure_writable(path.parent)
    check_names(path)
    if path.is_dir() and not (path / RECORD_FILE).is_file() and any(path.iterdir()):
        raise PermissionError(f"{path} exists and is not a record directory; choose another --out "
                              f"(a record replaces what is there)")
