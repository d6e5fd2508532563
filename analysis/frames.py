"""Records as tidy tables for the analysis commands: one row per record, grouped by the
setting they share, each objective entry labelled by its display name (``label``) and
named in file names by its objective (``slug``, the entry where that is ambiguous).

Records of one setting were trained with the same steps, batch, samples and grid axes
(`store.records`); within it an objective normally has one entry. When it has several
(``--set`` variants of one objective), each entry's label adds the hyperparameters that set
it apart, e.g. ``GRAM-net (lr=0.0005)``, so no table mixes them silently.
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

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
            labels[entry] = name + (f" ({', '.join(f'{k}={hp[k]}' for k in diff)})" if diff else "")
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
              "lr": "learning rate"}


def axis_name(axis: str | None) -> str:
    """What a grid axis is called in figures and tables: ``noise_dim`` -> ``noise dimension``."""
    return AXIS_NAMES.get(axis, axis.replace("_", " ")) if axis else ""


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


def describe_setting(record: store.Record) -> str:
    """One line naming what every run of a setting shares, e.g.
    ``steps 10500, batch 200, samples 10000, arch mlp, noise normal; grid noise_dim x width``."""
    cfg = record.config
    shared = {k: v for k, v in cfg.items() if k not in SHARED_EXCLUDED and k not in record.axes}
    text = ", ".join(f"{k.replace('n_samples', 'samples')} {v}" for k, v in shared.items())
    return f"{text}; grid {' x '.join(record.axes) or 'none'}"
