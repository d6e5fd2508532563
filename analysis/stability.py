"""Figures and tables of a stability sweep, rebuilt from stored records alone.

    python -m analysis.stability results/                # every setting and data set found below
    python -m analysis.stability results/stability/steps10500_batch200_3fa9c2 --out paper/ --format pdf

Records are grouped by the setting they share (`store.records`: steps, batch, samples,
grid axes, ...) and the data set; records of different settings never meet in one table
or figure. For each group this writes, into ``<setting>/<dataset>/`` beside the records
(or ``<--out>/<setting>/<dataset>/``):

- ``tables/cells.csv``: one row per (objective, cell, seed): config, status, metrics;
- ``tables/per_cell.{md,tex,csv}``: per (objective, cell) the successful seeds and every
  metric's mean ± std over seeds;
- ``tables/summary.{md,tex,csv}``: per objective the success rate over all cells and seeds
  with its 95% Wilson interval, the cells where every seed succeeds, and each metric's
  mean ± std over all runs;
- ``figures/samples_<objective>``, ``figures/samples_all``: the paper's sample figure
  (`analysis.sample_grids`);
- ``figures/heatmap_<metric>``: each metric over the grid on a fixed scale, every
  objective side by side, and ``figures/heatmap_<metric>_<objective>``, one objective at
  single-column width (`analysis.heatmaps`);
- ``figures/traces/traces_<cell>``: every objective's training trace in that cell, a band
  over seeds (`analysis.traces`).
- ``figures/over_steps_<dataset>_<cell>``: metrics over training steps, for runs trained
  with ``--eval-every`` (`analysis.curves`).

Tables have a column for every toy-data metric of `metrics.catalog` that judges a fit (its
short name and format; a yes/no one, like success, counted rather than averaged). Figures
are written in every ``--format`` (default PNG and PDF). Metric definitions and the
success rule are in `metrics.ring`.
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pandas as pd

import store
from analysis.command import report_command
from analysis.curves import draw_curves
from analysis.figures import DEFAULT_FORMATS, draw_all
from analysis.frames import (
    axis_name,
    by_setting_and_dataset,
    dataset_words,
    describe_setting,
    frame,
    group_dir,
    read_sweep,
    value_words,
)
from analysis.heatmaps import draw_heatmaps
from analysis.sample_grids import draw_sample_grids
from analysis.stats import mean_std, wilson
from analysis.tables import pm, write_table
from analysis.traces import draw_cell_traces
from core.files import OutsideRoot, ensure_dir
from metrics import catalog
from metrics.catalog import Metric
from metrics.success import SUCCESS_RULE


def grid_axes(df: pd.DataFrame, records: Sequence[store.Record]) -> list[str]:
    """The swept axes of a setting's records; an axis with one value is a constant here."""
    return [a for a in records[0].axes if df[a].nunique() > 1]


def seeds_note(n: int, expected: int) -> str:
    return f"{n}/{expected}" if n < expected else str(n)


def columns(df: pd.DataFrame) -> list[Metric]:
    """The toy-data quality metrics of `metrics.catalog` that ``df`` holds, in catalog order."""
    return [m for m in catalog.quality("toy") if m.key in df]


def per_cell(df: pd.DataFrame, axes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (objective entry, cell): (display table, numbers). Seeds ``k/n`` where only k of
    the objective's n seeds were run; a yes/no metric (success) as the seeds with it / seeds,
    every other metric as mean ± std over seeds."""
    shown, numbers = [], []
    metrics = columns(df)
    for entry, mine in df.groupby("entry", sort=False):
        expected = mine["seed"].nunique()
        for key, g in mine.groupby(list(axes), sort=True) if axes else [((), mine)]:
            key = key if isinstance(key, tuple) else (key,)
            cell = dict(zip(axes, key))
            row = {"objective": g["label"].iloc[0], **{axis_name(a): value_words(a, v) for a, v in cell.items()},
                   "seeds": seeds_note(len(g), expected)}
            num = {"entry": entry, "objective": g["label"].iloc[0], **cell, "seeds": len(g), "seeds_expected": expected}
            for m in metrics:
                if m.values == "flag":
                    k = int(g[m.key].sum())
                    row[m.short], num[m.short] = f"{k}/{len(g)}", k
                    continue
                mean, std, n = mean_std(g[m.key].astype(float))
                row[m.short] = pm(mean, std, m.fmt) + (f" ({n}/{len(g)})" if 0 < n < len(g) else "")
                num.update({f"{m.key}_mean": mean, f"{m.key}_std": std, f"{m.key}_n": n})
            shown.append(row)
            numbers.append(num)
    return pd.DataFrame(shown), pd.DataFrame(numbers)


def summarise(df: pd.DataFrame, axes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per objective entry: (display table, numbers): runs; for each yes/no metric (success)
    the runs with it, their rate with its Wilson 95% interval and the cells where every seed
    has it; each other metric's mean ± std over all runs; diverged and crashed runs."""
    shown, numbers = [], []
    metrics = columns(df)
    for entry, g in df.groupby("entry", sort=False):
        n = len(g)
        row = {"objective": g["label"].iloc[0]}
        num = {"entry": entry, "objective": g["label"].iloc[0], "runs": n}
        for m in metrics:
            if m.values == "flag":
                k = int(g[m.key].sum())
                lo, hi = wilson(k, n)
                cells = g.groupby(list(axes))[m.key].all() if axes else pd.Series([g[m.key].all()])
                row.update({m.short: f"{k}/{n}", f"{m.mean_label} [95% CI]": f"{k / n:.2f} [{lo:.2f}, {hi:.2f}]",
                            f"cells, all seeds {m.short}": f"{int(cells.sum())}/{len(cells)}"})
                num.update({m.short: k, f"{m.key}_rate": k / n, f"{m.key}_wilson_low": lo,
                            f"{m.key}_wilson_high": hi, "cells": len(cells), f"cells_all_{m.short}": int(cells.sum())})
                continue
            mean, std, _ = mean_std(g[m.key].astype(float))
            row[m.short] = pm(mean, std, m.fmt)
            num.update({f"{m.key}_mean": mean, f"{m.key}_std": std})
        for status in ("diverged", "crashed"):
            row[status] = num[status] = int((g["status"] == status).sum())
        shown.append(row)
        numbers.append(num)
    return pd.DataFrame(shown), pd.DataFrame(numbers)


def write_report(records: list[store.Record], out_dir: Path, figures: bool = True,
                 formats: Sequence[str] = DEFAULT_FORMATS, root: Path | None = None) -> str:
    """Tables (and figures) of one setting's records on one data set, into ``out_dir``;
    returns the summary as markdown. Writes only below ``root`` (default ``out_dir``), never
    through a symbolic link (`core.files.ensure_dir`)."""
    markdown, jobs = tables_and_figure_jobs(records, out_dir, figures, formats, root)
    draw_all(jobs)
    return markdown


def tables_and_figure_jobs(records: list[store.Record], out_dir: Path, figures: bool = True,
                           formats: Sequence[str] = DEFAULT_FORMATS, root: Path | None = None
                           ) -> tuple[str, list[Callable[[], object]]]:
    """`write_report`'s tables, written, and its figures as jobs for `analysis.figures.draw_all`
    (longest first), so that the figures of several data sets share the machine's cores."""
    df = frame(records)
    axes = grid_axes(df, records)
    root = out_dir if root is None else root
    tables, figs = ensure_dir(root, out_dir / "tables"), out_dir / "figures"
    store.write_text(tables / "cells.csv", df.drop(columns=["path"]).to_csv(index=False))
    dataset = records[0].config["dataset"]
    where = f"{dataset_words(dataset)}; {describe_setting(records[0])}"
    comment = f"setting {records[0].setting}"  # the directory name: a comment, never the caption
    seeds = ", ".join(map(str, sorted(df["seed"].unique())))
    shown, numbers = per_cell(df, axes)
    write_table(shown, numbers, tables, "per_cell", f"Per cell, mean ± std over seeds {seeds}; {where}. "
                f"(k/n): only k of n seeds have a value. {SUCCESS_RULE}.", lead=1 + len(axes), comment=comment)
    shown, numbers = summarise(df, axes)
    caption = (f"Per objective over all {df['cell'].nunique()} cells and seeds {seeds}: success rate with its "
               f"95% Wilson interval; metrics as mean ± std over all runs; {where}. {SUCCESS_RULE}.")
    markdown = write_table(shown, numbers, tables, "summary", caption, comment=comment)
    jobs = []
    if figures:
        ensure_dir(root, figs / "traces")
        jobs = [partial(draw_heatmaps, df, axes, figs, formats),
                partial(draw_cell_traces, df, figs / "traces", formats),
                partial(draw_sample_grids, df, axes, dataset, figs, formats),
                partial(draw_curves, records, figs, formats)]  # metrics over steps, where runs have them
    header = f"## {dataset_words(dataset)}: {len(df)} runs over {' x '.join(map(axis_name, axes)) or 'one cell'}\n\n"
    return header + markdown + f"\nfigures: {figs}\ntables: {tables}", jobs


def report(root: Path, out: Path | None = None, figures: bool = True, prog: str = "analysis.stability",
           formats: Sequence[str] = DEFAULT_FORMATS) -> str | None:
    """Tables and figures for every (setting, data set) of stability records below ``root``,
    each beside its records or under ``out/<setting>/<dataset>``; returns markdown (None
    when there are no stability records)."""
    records = read_sweep(root, "stability", prog)
    if not records:
        return None
    texts, jobs = [], []  # jobs: each data set's figure jobs, longest first
    for runs in by_setting_and_dataset(records):
        try:
            root = out or store.setting_dir_of(runs[0])
            text, more = tables_and_figure_jobs(runs, group_dir(runs, out), figures, formats, root)
        except OutsideRoot as err:  # a symbolic link planted in a received results folder
            print(f"{prog}: skipping {runs[0].setting}/{runs[0].config['dataset']}: {err}", file=sys.stderr)
            continue
        texts.append(text)
        jobs.append(more)
    draw_all([job for jobs_of_rank in itertools.zip_longest(*jobs) for job in jobs_of_rank if job is not None])
    return "\n\n".join(texts)


def main(argv: list[str] | None = None) -> int:
    return report_command("python -m analysis.stability", "Rebuild every stability figure and table from stored "
                          "records, per setting and data set.", report, argv)


if __name__ == "__main__":
    sys.exit(main())
