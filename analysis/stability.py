"""Figures and tables of a stability sweep, rebuilt from stored records alone.

    python -m analysis.stability results/                # every data set found below
    python -m analysis.stability results/stability/ring3d

For each data set directory (``.../stability/<dataset>/``) this writes:

- ``tables/cells.csv``: one row per (objective, cell, seed): config, status, metrics;
- ``tables/summary.md`` / ``summary.csv``: per objective, successful runs out of all,
  mean high-quality fraction, mean modes covered, mean mode KL, mean MMD^2;
- ``figures/samples_<model>.png``: the paper's layout, one panel per cell (columns the
  first swept axis, rows the second), data in blue and samples in orange; and
  ``figures/samples_all.png`` with the objectives side by side;
- ``figures/heatmap_<metric>.png``: each metric over the grid, objectives side by side on
  one colour scale, annotated with mean +- std over seeds (success: successful/seeds).

Metric definitions and the success rule are in `analysis.ring_metrics`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patheffects as patheffects  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import data  # noqa: E402
from analysis.figures import save_figure, scatter_panel  # noqa: E402
from analysis.ring_metrics import SUCCESS_HQ  # noqa: E402

RECORD_FILE = "record.json"
IDENTITY = ["dataset", "model", "cell", "seed"]
NOT_AXES = {"model", "dataset", "seed", "n_samples", "arch", "noise"}
METRICS = {  # column: (title, colour map, higher is better)
    "success": ("successful seeds", "Greens", True),
    "hq_fraction": ("high-quality fraction", "viridis", True),
    "modes_covered": ("modes covered", "viridis", True),
    "mode_kl": ("mode KL from uniform (nats)", "magma_r", False),
    "mmd2": ("MMD$^2$ to true samples", "magma_r", False),
}


def _hashable(v):
    return ",".join(map(str, v)) if isinstance(v, list) else v


def load_records(root: Path) -> pd.DataFrame:
    """One tidy row per complete record below ``root`` (partial ``.tmp-*`` writes skipped)."""
    rows = []
    for path in sorted(Path(root).rglob(RECORD_FILE)):
        if any(part.startswith(".tmp-") for part in path.parts):
            continue
        rec = json.loads(path.read_text())
        cfg = dict(rec["config"])
        hp = cfg.pop("hp", {})
        row = {**{k: _hashable(v) for k, v in cfg.items()}, **{k: _hashable(v) for k, v in hp.items()},
               "cell": rec.get("cell", path.parent.parent.name), "status": rec["status"],
               "reason": rec.get("reason"), "wall_time_s": rec.get("wall_time_s"),
               "stack_size": rec.get("stack_size"), "path": str(path.parent)}
        row.update(rec.get("metrics") or {})
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        if "success" in df:
            df["success"] = df["success"].fillna(False).astype(bool)
        df = df.sort_values(IDENTITY, kind="stable").reset_index(drop=True)
    return df


def swept_axes(df: pd.DataFrame) -> list[str]:
    """Config columns that vary across the records: the grid's axes, noise_dim/width first."""
    config_cols = [c for c in df.columns if c not in NOT_AXES and c not in METRICS and c not in
                   {"cell", "status", "reason", "wall_time_s", "stack_size", "path", "n_modes", "finite_fraction"}]
    varying = [c for c in config_cols if df[c].nunique(dropna=False) > 1]
    order = {"noise_dim": 0, "width": 1}
    return sorted(varying, key=lambda c: (order.get(c, 2), config_cols.index(c)))


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per objective: runs, successes, means of the metrics, diverged and crashed counts."""
    out = []
    for model, g in df.groupby("model", sort=False):
        out.append({
            "model": model,
            "successful": f"{int(g['success'].sum()) if 'success' in g else 0}/{len(g)}",
            "mean hq fraction": g.get("hq_fraction", pd.Series(dtype=float)).mean(),
            "mean modes covered": g.get("modes_covered", pd.Series(dtype=float)).mean(),
            "mean mode KL": g.get("mode_kl", pd.Series(dtype=float)).mean(),
            "mean MMD^2": g.get("mmd2", pd.Series(dtype=float)).mean(),
            "diverged": int((g["status"] == "diverged").sum()),
            "crashed": int((g["status"] == "crashed").sum()),
        })
    return pd.DataFrame(out)


def _facets(df: pd.DataFrame, axes: Sequence[str]):
    """Yield (suffix, sub-frame, col axis, row axis) for every value of axes beyond the first two."""
    col = axes[0] if axes else None
    row = axes[1] if len(axes) > 1 else None
    rest = list(axes[2:])
    if not rest:
        yield "", df, col, row
        return
    for values in itertools.product(*(sorted(df[a].dropna().unique()) for a in rest)):
        mask = np.logical_and.reduce([df[a] == v for a, v in zip(rest, values)])
        yield "_" + "_".join(f"{a}={v}" for a, v in zip(rest, values)), df[mask], col, row


def _levels(df: pd.DataFrame, axis: str | None) -> list:
    return sorted(df[axis].dropna().unique()) if axis else [None]


def _select(df: pd.DataFrame, col: str | None, cv, row: str | None, rv) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    if col:
        mask &= (df[col] == cv).to_numpy()
    if row:
        mask &= (df[row] == rv).to_numpy()
    return df[mask]


def draw_heatmaps(df: pd.DataFrame, axes: Sequence[str], out_dir: Path) -> list[Path]:
    """One PNG per metric (and per facet): objectives side by side on one colour scale."""
    written = []
    models = list(dict.fromkeys(df["model"]))
    for suffix, sub, col, row in _facets(df, axes):
        cols, rows = _levels(sub, col), _levels(sub, row)
        for metric, (title, cmap, _) in METRICS.items():
            if metric not in sub:
                continue
            grids, notes = {}, {}
            for m in models:
                grid = np.full((len(rows), len(cols)), np.nan)
                note = np.empty((len(rows), len(cols)), dtype=object)
                for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
                    vals = _select(sub[sub["model"] == m], col, cv, row, rv)[metric].astype(float)
                    if vals.empty:
                        note[i, j] = ""
                        continue
                    grid[i, j] = vals.mean()
                    if metric == "success":
                        note[i, j] = f"{int(vals.sum())}/{len(vals)}"
                    else:
                        fmt = ".0f" if metric == "modes_covered" else ".3g" if metric == "mmd2" else ".2f"
                        note[i, j] = (f"{vals.mean():{fmt}}" + (f"\n±{vals.std():{fmt}}" if len(vals) > 1 else "")
                                      if np.isfinite(vals.mean()) else "n/a")
                grids[m], notes[m] = grid, note
            finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
            if not finite.size:
                continue
            vmin, vmax = (0.0, 1.0) if metric in ("success", "hq_fraction") else (finite.min(), finite.max())
            fig, axs = plt.subplots(1, len(models), figsize=(1.2 + 0.9 * len(cols) * len(models), 0.8 + 0.7 * len(rows)),
                                    squeeze=False, constrained_layout=True)
            for ax, m in zip(axs[0], models):
                im = ax.imshow(grids[m], cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, origin="lower",
                               aspect="auto")
                for i, j in itertools.product(range(len(rows)), range(len(cols))):
                    ax.text(j, i, notes[m][i, j], ha="center", va="center", fontsize=7, color="white",
                            path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black")])
                ax.set_xticks(range(len(cols)), [str(c) for c in cols])
                ax.set_yticks(range(len(rows)), [str(r) for r in rows] if row else [""] * len(rows))
                ax.set_xlabel(col or "")
                ax.set_ylabel(row or "")
                ax.set_title(m)
            fig.colorbar(im, ax=axs[0].tolist(), shrink=0.9, label=title)
            fig.suptitle(f"{title}{suffix.replace('_', ' ')}", fontsize=10)
            path = out_dir / f"heatmap_{metric}{suffix}.png"
            written.append(save_figure(fig, path))
    return written


def _sample_grid(fig_or_sub, sub: pd.DataFrame, model: str, col, row, reference: np.ndarray) -> None:
    cols, rows = _levels(sub, col), _levels(sub, row)
    three_d = reference.shape[1] == 3
    for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
        ax = fig_or_sub.add_subplot(len(rows), len(cols), (len(rows) - 1 - i) * len(cols) + j + 1,
                                    projection="3d" if three_d else None)
        cell = _select(sub[sub["model"] == model], col, cv, row, rv).sort_values("seed")
        if cell.empty:
            ax.set_axis_off()
            continue
        first = cell.iloc[0]
        samples = np.load(Path(first["path"]) / "samples.npy") if first["status"] != "crashed" else np.zeros((0, 2))
        scatter_panel(ax, reference, samples)
        flag = "" if first.get("success", False) else " ✗"
        ax.set_title(f"{col}={cv}" + (f", {row}={rv}" if row else "") + flag, fontsize=6)
    fig_or_sub.suptitle(model, fontsize=10)


def draw_sample_grids(df: pd.DataFrame, axes: Sequence[str], dataset: str, out_dir: Path) -> list[Path]:
    """The paper's figure per objective (first seed of each cell), and all objectives side by side."""
    written = []
    try:
        ds = data.get(dataset)
        reference = ds.sample(2_000, torch.Generator().manual_seed(12345)).numpy() if ds.kind == "toy" else None
    except KeyError:
        reference = None
    if reference is None:
        return written
    models = list(dict.fromkeys(df["model"]))
    for suffix, sub, col, row in _facets(df, axes):
        nc, nr = len(_levels(sub, col)), len(_levels(sub, row))
        for m in models:
            fig = plt.figure(figsize=(1.6 * nc + 0.4, 1.6 * nr + 0.5))
            _sample_grid(fig, sub, m, col, row, reference)
            path = out_dir / f"samples_{m}{suffix}.png"
            written.append(save_figure(fig, path))
        if len(models) > 1:
            fig = plt.figure(figsize=((1.6 * nc + 0.4) * len(models), 1.6 * nr + 0.5))
            for subfig, m in zip(fig.subfigures(1, len(models)), models):
                _sample_grid(subfig, sub, m, col, row, reference)
            path = out_dir / f"samples_all{suffix}.png"
            written.append(save_figure(fig, path, dpi=90))
    return written


def report(dataset_dir: Path, models: Sequence[str] | None = None, figures: bool = True) -> str:
    """Write tables (and figures) for one ``.../stability/<dataset>`` directory; return markdown."""
    dataset_dir = Path(dataset_dir)
    df = load_records(dataset_dir)
    if df.empty:
        return f"no records below {dataset_dir}"
    if models:  # keep the user's order of objectives in tables and figures
        df = df[df["model"].isin(models)]
        df = df.iloc[np.argsort([list(models).index(m) for m in df["model"]], kind="stable")]
    axes = swept_axes(df)
    tables, figs = dataset_dir / "tables", dataset_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figs.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["path"]).to_csv(tables / "cells.csv", index=False)
    summary = summarise(df)
    summary.to_csv(tables / "summary.csv", index=False)
    dataset = df["dataset"].iloc[0]
    header = (f"## {dataset}: {len(df)} runs over {', '.join(axes) or 'one cell'}; success = all modes covered "
              f"and >= {SUCCESS_HQ:.0%} high-quality samples\n\n")
    markdown = header + summary.to_markdown(index=False, floatfmt=".3f")
    (tables / "summary.md").write_text(markdown + "\n")
    if figures:
        draw_heatmaps(df, axes, figs)
        draw_sample_grids(df, axes, dataset, figs)
    return markdown + f"\n\nfigures: {figs}\ntables: {tables}"


def dataset_dirs(root: Path) -> list[Path]:
    """Data set directories (parents of ``<model>/<cell>/<seed>/record.json``) below ``root``."""
    found = {p.parents[3] for p in Path(root).rglob(RECORD_FILE)
             if len(p.parents) > 3 and not any(part.startswith(".tmp-") for part in p.parts)}
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.stability",
                                description="Rebuild every stability figure and table from stored records.")
    p.add_argument("results", type=Path, help="results root, a stability/ directory, or one data set's directory")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    args = p.parse_args(argv)
    if not args.results.exists():
        print(f"{p.prog}: error: {args.results} does not exist", file=sys.stderr)
        return 2
    dirs = dataset_dirs(args.results)
    if not dirs:
        print(f"{p.prog}: error: no stability records below {args.results}", file=sys.stderr)
        return 2
    for d in dirs:
        print(report(d, figures=not args.no_figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
