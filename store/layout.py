"""Where records live: the folders of settings, sweeps, entries and cells, and the paths of
what lives beside the records while a stack trains (checkpoints, live views).

A sweep keeps the record of a configuration at a path made from it (`sweep_dir`)::

    <root>/<sweep>/<setting>/<dataset>/<entry>/<cell>/seed<k>/

- ``setting``: what every run of one experiment shares (steps, batch, samples, ... and the
  names of the grid's axes), e.g. ``steps10500_batch200_3fa9c2``;
- ``entry``: the objective and a hash of its hyperparameters outside the grid, e.g.
  ``gram_4f5e6d`` (a ``--set`` makes a new entry, never overwrites another);
- ``cell``: the grid point, e.g. ``noise_dim=2_width=20``.

So runs of different configurations never share a directory, a rerun finds exactly its
own records, and tables group records by setting and entry (`store.records.Record.row`).

While a stack trains, two kinds of files live outside the records: its checkpoint
(`stack_checkpoint`: ``<setting>/.checkpoints/<hash of the members' keys>.pt``, a single
run's too) and
each run's live TensorBoard folder (`live_dir`: a hidden ``.live-<host>.<pid>-seed<k>`` sibling
of the record, one per process), which `store.records.write` copies into the record as
``tensorboard/``.
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import config_key, ended, owner

if TYPE_CHECKING:
    from store.records import Record

CHECKPOINT_DIR = ".checkpoints"
LIVE_PREFIX = ".live-"
SHARED_EXCLUDED = ("model", "dataset", "seed", "hp", "objective_version", "objective_digest")  # not part of a setting


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
    if all(c.isalnum() or c in "._-" for c in name) and name.strip("."):
        return name
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name.split(":", 1)[-1]).name).strip("_")
    return f"{name.split(':', 1)[0]}-{stem or 'data'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


REQUIRED = {"model": str, "dataset": str, "seed": int, "steps": int, "batch": int, "hp": dict}  # what names use


def is_plain_name(name: Any) -> bool:
    """Whether ``name`` is one folder or file name: a non-empty string without a separator,
    NUL, or the names ``.`` and ``..`` (so joining it to a folder stays in that folder)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
            and len(name.encode(errors="surrogateescape")) <= 255)


def missing_fields(config: Any) -> list[str]:
    """The fields of `REQUIRED` that a record's configuration lacks or holds with another
    type (its folders and its tables cannot be named without them)."""
    if not isinstance(config, Mapping):
        return list(REQUIRED)
    return [k for k, kind in REQUIRED.items() if not isinstance(config.get(k), kind) or isinstance(config.get(k), bool)]


def layout_problem(config: Mapping[str, Any], axes: Mapping[str, Any], files: Any = ()) -> str | None:
    """Why a name a record's content makes (its data set, objective and cell folders, its axis
    names and values, its data files) is not one plain file name, in one line; None when
    every one is."""
    if any(v in ("", (), []) for v in axes.values()):
        return "its grid cell has an empty axis"
    names = {"cell": cell_label(axes), **{f"axis {k!r}": str(k) for k in axes}, **{f"file {f!r}": f for f in files}}
    names.update({f"axis value {v!r}": str(v) for v in axes.values() if not isinstance(v, (tuple, list))})
    for field in ("model", "dataset"):
        if isinstance(config.get(field), str):
            names[f"{field} {config[field]!r}"] = dataset_dir(config[field]) if field == "dataset" else config[field]
    bad = [what for what, name in names.items() if not is_plain_name(name)]
    return f"its {bad[0][:80]} is not a plain file name (a separator, '..' or an absolute path)" if bad else None


def setting_dir(root: Path, sweep: str, config: Mapping[str, Any], axes: Mapping[str, Any]) -> Path:
    """The directory of one experiment's records (and its tables and figures)."""
    return Path(root) / sweep / setting_id(config, axes)


def sweep_dir(root: Path, sweep: str, config: Mapping[str, Any], axes: Mapping[str, Any]) -> Path:
    """Where a sweep keeps the record of ``config`` (plain data) at grid cell ``axes``."""
    return (setting_dir(root, sweep, config, axes) / dataset_dir(config["dataset"])
            / entry_id(config, axes) / cell_label(axes) / f"seed{config['seed']}")


def setting_dir_of(record: Record) -> Path:
    """The setting directory a sweep's record was read from (see `setting_dir`)."""
    return next(p for p in record.path.parents if p.name == record.setting)


def stack_checkpoint(record: Path, members: Sequence[str]) -> Path:
    """The checkpoint of a sweep's stack: in the setting directory of its record ``record``
    (any member's), named by a hash of its members' configuration keys (stacks are a
    pure function of the grid, so a rerun finds it)."""
    return Path(record).parents[3] / CHECKPOINT_DIR / f"{config_key({'members': list(members)})}.pt"


def live_dir(record: Path) -> Path:
    """Where this process's TensorBoard event files of a run grow while it trains: a hidden
    sibling of its record named after the process, ``.live-<host>.<pid>-<name>``
    (`core.files.owner`), so two processes training into one root never share or remove
    each other's (`store.records.write` copies it into the record as ``tensorboard/``)."""
    return Path(record).parent / f"{LIVE_PREFIX}{owner()}-{Path(record).name}"


def claim_live_dir(record: Path) -> Path:
    """`live_dir` of ``record``, after taking over the live folder that an ended process of
    this host left for the same record (the newest, so a killed run that resumes from its
    checkpoint goes on with its view) and removing that process's others. Live folders of
    running processes are never touched."""
    mine, name = live_dir(record), Path(record).name
    found = [p for p in Path(record).parent.glob(f"{LIVE_PREFIX}*-{name}")
             if p != mine and p.name[len(LIVE_PREFIX):-len(name) - 1].count(".") == 1]
    dead = sorted((p for p in found if ended(p.name[len(LIVE_PREFIX):-len(name) - 1])),
                  key=lambda p: p.stat().st_mtime)
    if dead and not mine.exists():
        dead.pop().rename(mine)
    for p in dead:
        shutil.rmtree(p, ignore_errors=True)
    return mine
