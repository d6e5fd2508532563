"""Figures and tables of a stability sweep, rebuilt from stored records alone.

    python -m analysis.stability results/                # every setting and data set found below
    python -m analysis.stability results/stability/steps10500_batch200_3fa9c2 --out paper/

Records are grouped by the setting they share (`store.records`: steps, batch, samples,
grid axes, ...) and the data set; records of different settings never meet in one table
or figure. For each group this writes, into ``<setting>/<dataset>/`` beside the records
(or ``<--out>/<setting>/<dataset>/``):

- ``tables/cells.csv``: one row per (objective, cell, seed): config, status, metrics;
- ``tables/summary.md`` / ``summary.csv``: per objective, successful runs out of all,
  mean high-quality fraction, mean modes covered, mean mode KL, mean MMD^2;
- ``figures/samples_<entry>.png``: the paper's layout, one panel per cell (columns the
  first swept axis, rows the second), data in blue and samples in orange; and
  ``figures/samples_all.png`` with the objectives side by side;
- ``figures/heatmap_<metric>.png``: each metric over the grid, objectives side by side on
  one colour scale, annotated with mean +- std over seeds (success: successful/seeds);
- ``figures/over_steps_<dataset>_<cell>.png`` for runs trained with ``--eval-every``
  (`analysis.curves`).

Metric definitions and the success rule are in `analysis.ring_metrics`.
"""
from __future__ import annotations

import itertools
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
import store  # noqa: E402
from analysis.curves import draw_curves  # noqa: E402
from analysis.figures import save_figure, scatter_panel  # noqa: E402
from analysis.frames import by_setting, describe_setting, frame, read_sweep  # noqa: E402
from analysis.command import report_command  # noqa: E402
from metrics.ring import SUCCESS_RULE  # noqa: E402

METRICS = {  # column: (title, colour map, higher is better)
    "success": ("successful seeds", "Greens", True),
    "hq_fraction": ("high-quality fraction", "viridis", True),
    "modes_covered": ("modes covered (PacGAN: >= 1 high-quality sample)", "viridis", True),
    "modes_covered_strict": ("modes strictly covered (>= 10% of a uniform share)", "viridis", True),
    "spread": ("spread around the modes (data = 1)", "magma_r", False),
    "mode_kl": ("mode KL from uniform (nats)", "magma_r", False),
    "mmd2": ("MMD$^2$ to true samples", "magma_r", False),
}


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per objective entry: runs, successes, means of the metrics, diverged and crashed counts."""
    out = []
    for label, g in df.groupby("label", sort=False):
        out.append({
            "model": label,
            "successful": f"{int(g['success'].sum()) if 'success' in g else 0}/{len(g)}",
            "mean hq fraction": g.get("hq_fraction", pd.Series(dtype=float)).mean(),
            "mean modes covered": g.get("modes_covered", pd.Series(dtype=float)).mean(),
            "mean modes strict": g.get("modes_covered_strict", pd.Series(dtype=float)).mean(),
            "mean spread": g.get("spread", pd.Series(dtype=float)).mean(),
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
    entries = list(dict.fromkeys(df["entry"]))
    labels = dict(zip(df["entry"], df["label"]))
    for suffix, sub, col, row in _facets(df, axes):
        cols, rows = _levels(sub, col), _levels(sub, row)
        for metric, (title, cmap, _) in METRICS.items():
            if metric not in sub:
                continue
            grids, notes = {}, {}
            for m in entries:
                grid = np.full((len(rows), len(cols)), np.nan)
                note = np.empty((len(rows), len(cols)), dtype=object)
                for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
                    vals = _select(sub[sub["entry"] == m], col, cv, row, rv)[metric].astype(float)
                    if vals.empty:
                        note[i, j] = ""
                        continue
                    grid[i, j] = vals.mean()
                    if metric == "success":
                        note[i, j] = f"{int(vals.sum())}/{len(vals)}"
                    else:
                        fmt = ".0f" if metric.startswith("modes_covered") else ".3g" if metric == "mmd2" else ".2f"
                        note[i, j] = (f"{vals.mean():{fmt}}" + (f"\n±{vals.std():{fmt}}" if len(vals) > 1 else "")
                                      if np.isfinite(vals.mean()) else "n/a")
                grids[m], notes[m] = grid, note
            finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
            if not finite.size:
                continue
            vmin, vmax = (0.0, 1.0) if metric in ("success", "hq_fraction") else (finite.min(), finite.max())
            size = (1.2 + 0.9 * len(cols) * len(entries), 0.8 + 0.7 * len(rows))
            fig, axs = plt.subplots(1, len(entries), figsize=size, squeeze=False, constrained_layout=True)
            for ax, m in zip(axs[0], entries):
                im = ax.imshow(grids[m], cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, origin="lower",
                               aspect="auto")
                for i, j in itertools.product(range(len(rows)), range(len(cols))):
                    ax.text(j, i, notes[m][i, j], ha="center", va="center", fontsize=7, color="white",
                            path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black")])
                ax.set_xticks(range(len(cols)), [str(c) for c in cols])
                ax.set_yticks(range(len(rows)), [str(r) for r in rows] if row else [""] * len(rows))
                ax.set_xlabel(col or "")
                ax.set_ylabel(row or "")
                ax.set_title(labels[m])
            fig.colorbar(im, ax=axs[0].tolist(), shrink=0.9, label=title)
            fig.suptitle(f"{title}{suffix.replace('_', ' ')}", fontsize=10)
            path = out_dir / f"heatmap_{metric}{suffix}.png"
            written.append(save_figure(fig, path))
    return written


def _sample_grid(fig_or_sub, sub: pd.DataFrame, entry: str, col, row, reference: np.ndarray) -> None:
    cols, rows = _levels(sub, col), _levels(sub, row)
    three_d = reference.shape[1] == 3
    for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
        ax = fig_or_sub.add_subplot(len(rows), len(cols), (len(rows) - 1 - i) * len(cols) + j + 1,
                                    projection="3d" if three_d else None)
        cell = _select(sub[sub["entry"] == entry], col, cv, row, rv).sort_values("seed")
        if cell.empty:
            ax.set_axis_off()
            continue
        first = cell.iloc[0]
        samples = store.load_samples(first["path"]) if first["status"] != "crashed" else np.zeros((0, 2))
        scatter_panel(ax, reference, samples)
        flag = "" if first.get("success", False) else " ✗"
        ax.set_title(f"{col}={cv}" + (f", {row}={rv}" if row else "") + flag, fontsize=6)
    fig_or_sub.suptitle(sub.loc[sub["entry"] == entry, "label"].iloc[0], fontsize=10)


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
    entries = list(dict.fromkeys(df["entry"]))
    slugs = dict(zip(df["entry"], df["slug"]))
    for suffix, sub, col, row in _facets(df, axes):
        nc, nr = len(_levels(sub, col)), len(_levels(sub, row))
        for m in entries:
            fig = plt.figure(figsize=(1.6 * nc + 0.4, 1.6 * nr + 0.5))
            _sample_grid(fig, sub, m, col, row, reference)
            path = out_dir / f"samples_{slugs[m]}{suffix}.png"
            written.append(save_figure(fig, path))
        if len(entries) > 1:
            fig = plt.figure(figsize=((1.6 * nc + 0.4) * len(entries), 1.6 * nr + 0.5))
            for subfig, m in zip(fig.subfigures(1, len(entries)), entries):
                _sample_grid(subfig, sub, m, col, row, reference)
            path = out_dir / f"samples_all{suffix}.png"
            written.append(save_figure(fig, path, dpi=90))
    return written


def write_report(records: list[store.Record], out_dir: Path, figures: bool = True) -> str:
    """Tables (and figures) of one setting's records on one data set, into ``out_dir``;
    returns the summary as markdown."""
    df = frame(records)
    axes = [a for a in records[0].axes if df[a].nunique() > 1]  # a single-valued axis is a constant here
    tables, figs = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["path"]).to_csv(tables / "cells.csv", index=False)
    summary = summarise(df)
    summary.to_csv(tables / "summary.csv", index=False)
    dataset = records[0].config["dataset"]
    header = (f"## {dataset}: {len(df)} runs over {' x '.join(axes) or 'one cell'}; {SUCCESS_RULE}\n\n"
              f"setting {records[0].setting}: "
              f"{describe_setting(records[0])}\n\n")
    markdown = header + summary.to_markdown(index=False, floatfmt=".3f")
    (tables / "summary.md").write_text(markdown + "\n")
    if figures:
        figs.mkdir(parents=True, exist_ok=True)
        draw_heatmaps(df, axes, figs)
        draw_sample_grids(df, axes, dataset, figs)
        draw_curves(records, figs)  # metrics over steps, where runs have them
    return markdown + f"\n\nfigures: {figs}\ntables: {tables}"


def report(root: Path, out: Path | None = None, figures: bool = True, prog: str = "analysis.stability") -> str | None:
    """Tables and figures for every (setting, data set) of stability records below ``root``,
    each beside its records or under ``out/<setting>/<dataset>``; returns markdown (None
    when there are no stability records)."""
    records = read_sweep(root, "stability", prog)
    if not records:
        return None
    texts = []
    for setting, group in by_setting(records):
        for dataset in dict.fromkeys(r.config["dataset"] for r in group):
            runs = [r for r in group if r.config["dataset"] == dataset]
            base = Path(out) / setting if out else store.setting_dir_of(runs[0])
            texts.append(write_report(runs, base / store.dataset_dir(dataset), figures))
    return "\n\n".join(texts)


def main(argv: list[str] | None = None) -> int:
    return report_command("python -m analysis.stability", "Rebuild every stability figure and table from stored "
                          "records, per setting and data set.", report, argv)


if __name__ == "__main__":
    sys.exit(main())
