"""Metrics over training steps: one line per objective, a band over seeds.

    python -m analysis.curves results/             # every setting found below
    python -m analysis.curves results/fid --out paper/

Runs trained with ``--eval-every N`` keep ``metrics_over_steps.csv`` (`store.load_curves`:
the metrics of a fixed-noise sample at step 0, every N steps and at the end, scored like
the final samples but with ``--eval-samples`` of them, so the last point is not the
table's number when the table scored more samples). For each setting, data set and grid
cell this draws ``figures/over_steps_<dataset>_<cell>.png``: one panel per metric, one
line per objective entry (the mean over its seeds) and a shaded band from the lowest to
the highest seed. Panels follow `metrics.catalog`: every quality metric the curves hold, in
catalog order, titled by its label, on its scale (a log metric's values at or below its
floor drawn at the floor; one without a floor that reaches zero or below on a linear
axis). The FID and stability reports (`analysis.fid_table`,
`analysis.stability`) draw the same figures when their records have curves.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import store
from analysis.command import report_command
from analysis.figures import DEFAULT_FORMATS, DOUBLE_COLUMN, label_log_axis, save_figure
from analysis.frames import SWEEPS, by_setting, cell_words, dataset_words, frame, read_sweep
from analysis.heatmaps import modes_in
from metrics import catalog


def curves_frame(records: Sequence[store.Record]) -> pd.DataFrame:
    """Every stored curve of ``records`` in one long table: a row per (run, evaluated step)
    with the run's ``label``, ``dataset``, ``cell`` and ``seed``; empty when none has curves."""
    rows = frame(list(records))
    parts = []
    for r in rows.itertuples(index=False):
        curve = store.load_curves(Path(r.path))
        if curve is not None and len(curve):
            parts.append(curve.assign(label=r.label, entry=r.entry, dataset=r.dataset, cell=r.cell, seed=r.seed))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def plot_curves(df: pd.DataFrame, title: str) -> plt.Figure:
    """One panel per metric present in ``df`` (columns ``label``, ``seed``, ``step`` and the
    metrics), one line per label: the mean over seeds, shaded from the lowest to the
    highest seed."""
    metrics = [m for m in catalog.quality() if m.key in df and df[m.key].notna().any()]
    labels = list(dict.fromkeys(df["label"]))
    legend_rows = -(-len(labels) // 4)  # legend rows below the panels
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(DOUBLE_COLUMN, 1.9 * rows + 0.45 + 0.15 * legend_rows),
                            squeeze=False)
    for ax in axs.flat[len(metrics):]:
        ax.set_axis_off()
    n_modes = modes_in(df)
    for ax, metric in zip(axs.flat, metrics):
        floor = metric.limits(n_modes)[0] if metric.log and metric.limits else None
        for name, g in df.groupby("label", sort=False):
            by_step = g.pivot_table(index="step", columns="seed", values=metric.key, aggfunc="first").astype(float)
            if floor is not None:
                by_step = by_step.clip(lower=floor)
            if by_step.empty:
                continue
            mean = by_step.mean(axis=1)
            line, = ax.plot(mean.index, mean.to_numpy(), lw=1.5, label=name)
            if by_step.shape[1] > 1:
                ax.fill_between(by_step.index, by_step.min(axis=1), by_step.max(axis=1), color=line.get_color(),
                                alpha=0.2, lw=0)
        if metric.log and (floor is not None or (df[metric.key].dropna() > 0).all()):
            ax.set_yscale("log")
            label_log_axis(ax.yaxis)
        ax.set_xlabel("generator step")
        ax.set_title(metric.mean_label)
        ax.grid(alpha=0.3)
    seeds = df.groupby("label")["seed"].nunique().max()
    handles, names = axs[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), frameon=False)
    fig.suptitle(title + (f" (line: mean of {seeds} seeds, band: lowest to highest)" if seeds > 1 else ""))
    fig.tight_layout(rect=(0, 0.05 * legend_rows + 0.02, 1, 1))
    return fig


def save_curves(items: Sequence[tuple[str, pd.DataFrame]], path: Path, title: str = "",
                formats: Sequence[str] | None = None) -> Path:
    """One figure of the curves of single runs (``(label, curve)`` pairs) at ``path``, once per format."""
    df = pd.concat([c.assign(label=label, seed=0) for label, c in items], ignore_index=True)
    return save_figure(plot_curves(df, title), path, formats)


def figure_stem(dataset_dir: str, cell: str) -> str:
    """The file name (without suffix) of one data set's (its `store.dataset_dir` name) and cell's curves."""
    return f"over_steps_{dataset_dir}_{cell}"


def draw_curves(records: Sequence[store.Record], out_dir: Path,
                formats: Sequence[str] = DEFAULT_FORMATS) -> list[Path]:
    """``over_steps_<dataset>_<cell>`` in ``out_dir``, in each of ``formats``, for every data
    set and grid cell of ``records`` (one setting) whose runs have curves; returns the files."""
    df = curves_frame(records)
    if df.empty:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, cell), g in df.groupby(["dataset", "cell"], sort=False):
        path = Path(out_dir) / figure_stem(store.dataset_dir(dataset), cell)
        written.append(save_figure(plot_curves(g, f"{dataset_words(dataset)}, {cell_words(cell)}"), path, formats))
    return written


def report(root: Path, out: Path | None = None, figures: bool = True, prog: str = "analysis.curves",
           formats: Sequence[str] = DEFAULT_FORMATS) -> str | None:
    """The curves of every setting below ``root`` (stability and FID sweeps), each beside its
    records (``<setting>/figures``) or under ``out/<setting>``; returns the files as
    markdown (None when no record has curves)."""
    records = read_sweep(root, SWEEPS, prog)
    written = []
    for setting, group in by_setting(records):
        base = Path(out) / setting if out else store.setting_dir_of(group[0])
        written += draw_curves(group, base / "figures", formats) if figures else []
    if not written and not any(store.load_curves(r.path) is not None for r in records):
        return None
    return "\n".join(f"- {p}" for p in written) or "curves found (figures skipped)"


def main(argv: list[str] | None = None) -> int:
    return report_command("python -m analysis.curves", "Draw metrics over training steps (runs trained with "
                          "--eval-every) per setting: one line per objective, a band over seeds.", report, argv)


if __name__ == "__main__":
    sys.exit(main())
