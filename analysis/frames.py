"""Records as tidy tables for the analysis commands: one row per record, grouped by the
setting they share, each objective entry labelled by its display name (``label``) and
named in file names by its objective (``slug``, the entry where that is ambiguous).

Records of one setting were trained with the same steps, batch, samples and grid axes
(`store.records`); within it an objective normally has one entry. When it has several
(``--set`` variants of one objective), each entry's label adds the hyperparameters that set
it apart in words, e.g. ``GRAM-net (learning rate 0.0005)``, so no table mixes them silently.
"""
from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import objectives
import store
from metrics import catalog
from store.layout import SHARED_EXCLUDED, missing_fields

SWEEPS = ("stability", "fid")  # the sweeps whose records have a grid (not single `sweeps.train` runs)


def scan(root: Path, prog: str) -> tuple[list[store.Record], list[tuple[Path, str]]]:
    """`store.scan`, with every unreadable, damaged or older-format record, and every record
    without the configuration fields tables need (`store.layout.missing_fields`), named on
    stderr in one line (and returned, for a report to list)."""
    found, problems = store.scan(root)
    records = []
    for r in found:  # checksums hold, but tables need these fields
        missing = missing_fields(r.config)
        if missing:
            problems.append((r.path, f"its configuration lacks fields or has them of the wrong type "
                                     f"({', '.join(missing)})"))
        else:
            records.append(r)
    for path, why in problems:
        print(f"{prog}: skipping {path}: {why}", file=sys.stderr)
    return records, problems


def read_sweep(root: Path, sweeps: str | Collection[str], prog: str) -> list[store.Record]:
    """The readable records below ``root`` of one sweep or several; the others are named on
    stderr and skipped (`scan`)."""
    wanted = {sweeps} if isinstance(sweeps, str) else set(sweeps)
    return [r for r in scan(root, prog)[0] if r.sweep in wanted]


def entry_order(entries: pd.DataFrame) -> list[str]:
    """Entries in registry order of their objectives (the paper's order, then plugins)."""
    known = objectives.names()
    rank = {m: i for i, m in enumerate(known)}
    pairs = entries[["entry", "model"]].drop_duplicates()
    return [e for e, _ in sorted(pairs.itertuples(index=False), key=lambda p: (rank.get(p[1], len(known)), p[0]))]


def _labels(records: list[store.Record]) -> dict[str, str]:
    """Entry -> label: the display name, plus distinguishing hyperparameters where one
    objective has several entries."""
    by_model: dict[str, dict[str, dict]] = {}
    for r in records:
        hp = {k: v for k, v in r.config["hp"].items() if k not in r.axes}
        by_model.setdefault(r.model, {})[r.entry] = (r.display_name, hp)
    labels = {}
    for entries in by_model.values():
        for entry, (name, hp) in entries.items():
            others = [h for e, (_, h) in entries.items() if e != entry]
            diff = [k for k in hp if any(o.get(k) != hp[k] for o in others)]
            labels[entry] = name + (f" ({cell_words({k: hp[k] for k in diff})})" if diff else "")
    return labels


def frame(records: list[store.Record]) -> pd.DataFrame:
    """One row per record (`store.Record.row`) with a ``label`` per entry, in a stable order."""
    if not records:
        return pd.DataFrame()
    labels = _labels(records)
    df = pd.DataFrame([{**r.row(), "label": labels[r.entry]} for r in records])
    # file names: the objective's name, or the entry where one objective has several
    several = df.groupby("model")["entry"].nunique()
    df["slug"] = [e if several[m] > 1 else m for m, e in zip(df["model"], df["entry"])]
    for flag in [m.key for m in catalog.every() if m.values == "flag" and m.key in df]:  # yes/no: a missing one is no
        df[flag] = df[flag].astype("boolean").fillna(False).astype(bool)
    order = {e: i for i, e in enumerate(entry_order(df))}
    df["_order"] = df["entry"].map(order)
    return df.sort_values(["_order", "dataset", "cell", "seed"], kind="stable").drop(columns="_order") \
             .reset_index(drop=True)


def by_setting(records: list[store.Record]) -> Iterator[tuple[str, list[store.Record]]]:
    """Records grouped by the setting they share, in order of first appearance."""
    groups: dict[str, list[store.Record]] = {}
    for r in records:
        groups.setdefault(r.setting, []).append(r)
    yield from groups.items()


def facets(df: pd.DataFrame, axes: Sequence[str]) -> Iterator[tuple[str, pd.DataFrame, str | None, str | None]]:
    """(file-name suffix, rows, column axis, row axis) for every value of the axes beyond the
    first two: a figure shows the first axis across and the second down."""
    col = axes[0] if axes else None
    row = axes[1] if len(axes) > 1 else None
    rest = list(axes[2:])
    if not rest:
        yield "", df, col, row
        return
    for values in itertools.product(*(levels(df, a) for a in rest)):
        mask = np.logical_and.reduce([df[a] == v for a, v in zip(rest, values)])
        yield "_" + "_".join(f"{a}={v}" for a, v in zip(rest, values)), df[mask], col, row


def levels(df: pd.DataFrame, axis: str | None) -> list:
    """The values of a grid axis in ascending order (the paper's: width 20 first), [None] for no axis."""
    return sorted(df[axis].dropna().unique()) if axis else [None]


def select(df: pd.DataFrame, col: str | None, cv, row: str | None, rv) -> pd.DataFrame:
    """The rows of one grid cell."""
    mask = np.ones(len(df), dtype=bool)
    if col:
        mask &= (df[col] == cv).to_numpy()
    if row:
        mask &= (df[row] == rv).to_numpy()
    return df[mask]


AXIS_NAMES = {"noise_dim": "noise dimension", "width": "generator width", "depth": "generator depth",
              "arch": "architecture", "batch": "batch size", "steps": "generator steps", "df": "projection dimension",
              "lr": "learning rate", "n_samples": "samples", "ema": "generator moving average", "noise": "noise",
              "layer_dtype": "layer precision", "device": "device"}
VALUE_NAMES = {"arch": {"mlp": "MLP", "dcgan": "DCGAN", "weaker": "Weaker"}}  # as in the paper's Table 1
NAMED_BY_VALUE = {"arch"}  # axes whose value alone says it: "DCGAN", not "architecture DCGAN"
DATASET_NAMES = {"ring2d": "2-D ring", "ring3d": "3-D ring", "grid": "5x5 grid", "mnist": "MNIST",
                 "mnist5k": "MNIST (5,000 images)", "cifar10": "CIFAR-10", "celeba": "CelebA",
                 "celeba32": "CelebA (32x32)"}
_CELL_PART = re.compile(r"([A-Za-z][A-Za-z0-9_]*?)=([^=]*?)(?=_[A-Za-z][A-Za-z0-9_]*=|$)")


def axis_name(axis: str | None) -> str:
    """What a grid axis is called in figures and tables: ``noise_dim`` -> ``noise dimension``."""
    return AXIS_NAMES.get(axis, axis.replace("_", " ")) if axis else ""


def value_words(axis: str, value: Any) -> str:
    """One axis value as a reader says it: ``dcgan`` -> ``DCGAN``, ``(2, 4)`` -> ``2-4``, numbers as they are."""
    if isinstance(value, (tuple, list)):
        return "-".join(map(str, value))
    return VALUE_NAMES.get(axis, {}).get(str(value), str(value))


def cell_words(cell: Mapping[str, Any] | str) -> str:
    """A grid cell in words for titles and captions: ``{"noise_dim": 4, "width": 100}`` (or
    its directory name ``noise_dim=4_width=100``, `store.layout.cell_label`) -> ``noise
    dimension 4, generator width 100``; ``arch=dcgan`` -> ``DCGAN``; no axes -> ``""``."""
    if isinstance(cell, str):
        cell = {k: v for k, v in _CELL_PART.findall(cell)}
    return ", ".join(value_words(k, v) if k in NAMED_BY_VALUE else f"{axis_name(k)} {value_words(k, v)}"
                     for k, v in cell.items())


def dataset_words(dataset: str) -> str:
    """A data set's name in words: ``ring3d`` -> ``3-D ring``; unknown names as they are."""
    return DATASET_NAMES.get(dataset, dataset)


def by_setting_and_dataset(records: list[store.Record]) -> list[list[store.Record]]:
    """Records per (setting, data set), in order of first appearance."""
    out = []
    for _, group in by_setting(records):
        for dataset in dict.fromkeys(r.config["dataset"] for r in group):
            out.append([r for r in group if r.config["dataset"] == dataset])
    return out


def group_dir(runs: list[store.Record], out: Path | None) -> Path:
    """Where one (setting, data set)'s tables and figures go: beside the records
    (``<setting>/<dataset>``), or ``out/<setting>/<dataset>``."""
    base = Path(out) / runs[0].setting if out else store.setting_dir_of(runs[0])
    return base / store.dataset_dir(runs[0].config["dataset"])


SETTING_HIDDEN = ("engine_version",)  # internals a caption leaves out (the setting's directory name pins them)


def describe_setting(record: store.Record) -> str:
    """What every run of a setting shares, in words, e.g. ``10,500 generator steps, batch size
    200, 10,000 samples, MLP, normal noise, generator depth 2; grid: noise dimension x generator
    width``. Internals (the engine version) are left out; the setting's directory name, which
    pins them, belongs in a comment (`analysis.tables.write_table`)."""
    first = ("steps", "batch", "n_samples")
    cfg = {**{k: record.config[k] for k in first if k in record.config}, **record.config}
    shown = {k: v for k, v in cfg.items() if k not in SHARED_EXCLUDED and k not in SETTING_HIDDEN
             and k not in record.axes}
    words = {"steps": lambda v: f"{v:,} generator steps", "n_samples": lambda v: f"{v:,} samples",
             "noise": lambda v: f"{v} noise", "arch": lambda v: value_words("arch", v),
             "ema": lambda v: f"generator moving average {v}" if v else "no generator moving average"}
    text = ", ".join(words[k](v) if k in words else f"{axis_name(k)} {value_words(k, v)}" for k, v in shown.items())
    return f"{text}; grid: {' x '.join(map(axis_name, record.axes)) or 'none'}"
