"""Heatmaps of the ring metrics over a sweep's grid, on colour scales fixed by the metric
alone (`metrics.catalog`: its range given the number of modes, its scale, its best end),
never by the data, so two figures (or two objectives) can be compared by colour and the
best possible value always gets the same colour:

- the best end at the top of the colour bar: viridis for a high or low best end (counts
  of modes on 0..n_modes, fractions and success rates on 0..1, mode KL on 0..log n_modes,
  MMD^2 on a log scale from its noise floor 1e-4 to twice the kernel's largest value);
- a best centre (spread: log 1/8..8 centred on the data's 1) on a diverging map whose
  light centre is best; lines on the colour bar mark the success rule's band;
- values outside the range take the colour of its end (on a log scale, values at or below
  zero the floor's).

Each cell is annotated with the mean ± std over seeds (one seed: the value; a yes/no metric
such as success: the seeds with it out of all), with precision matching the metric's
format, and ``(k/n)`` where only k of the objective's n seeds have a value (a missing or
crashed run, or an undefined metric). Every catalogued metric with a fixed range that the
records hold gets a figure with every objective, and one per objective at single-column width.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures import DOUBLE_COLUMN, SINGLE_COLUMN, label_log_axis, save_figure
from analysis.frames import axis_name, cell_words, facets, levels, select, value_words
from analysis.stats import mean_std
from analysis.tables import numbers
from metrics import catalog
from metrics.catalog import Metric

MISSING_COLOUR = "0.88"
COLOUR_MAPS = {"high": "viridis", "low": "viridis_r", "centre": "PuOr"}  # by the metric's best end
NOTE = ("Cells: mean ± std over seeds (a yes/no metric such as success: the seeds with it / seeds); (k/n): only k "
        "of the n seeds have a value; n/a: undefined for every seed (spread: no mode strictly covered); "
        "grey: no value.")


def drawn() -> list[Metric]:
    """The metrics a heatmap can show: those with a best end and a fixed range, in catalog order."""
    return [m for m in catalog.quality() if m.limits is not None]


def norm(metric: Metric, n_modes: int) -> mcolors.Normalize:
    lo, hi = metric.limits(n_modes)
    return mcolors.LogNorm(lo, hi) if metric.log else mcolors.Normalize(lo, hi)


def cmap(metric: Metric) -> mcolors.Colormap:
    return matplotlib.colormaps[COLOUR_MAPS[metric.best]].with_extremes(bad=MISSING_COLOUR)


def colour_values(metric: Metric, values: np.ndarray, n_modes: int) -> np.ndarray:
    """``values`` as drawn: clipped into the fixed range (so a log scale never hides a value
    at or below zero); NaN stays NaN (grey)."""
    lo, hi = metric.limits(n_modes)
    return np.clip(np.asarray(values, dtype=np.float64), lo, hi)


def scale_words(metric: Metric, n_modes: int) -> str:
    """The fixed range in words, e.g. ``0 to 8, best 8 at the top``."""
    lo, hi = metric.limits(n_modes)
    where = "at the light centre" if metric.best == "centre" else "at the top"
    return f"{'log ' if metric.log else ''}{lo:.3g} to {hi:.3g}, best {metric.best_value(n_modes):.3g} {where}"


def modes_in(df: pd.DataFrame) -> int:
    """The number of modes of the data behind ``df``'s rows (what fixed ranges depend on); 1 without any."""
    return int(df["n_modes"].dropna().max()) if "n_modes" in df and df["n_modes"].notna().any() else 1


def tick_label(value: float) -> str:
    """A colour-bar tick: ``1/8`` for reciprocals of whole numbers, else the number."""
    return f"1/{1 / value:g}" if 0 < value < 1 and float(1 / value).is_integer() else f"{value:g}"


def annotation(metric: str, values: pd.Series, expected: int) -> str:
    """The text of one cell (see the module docstring)."""
    m = catalog.get(metric)
    v = values.astype(float)
    if m.values == "flag":
        return f"{int(v.sum())}/{len(v)}" + (f"\n({len(v)}/{expected})" if len(v) < expected else "")
    mean, std, n = mean_std(v)
    if n == 0:
        return "n/a"
    finite = v[np.isfinite(v)]
    if m.values == "count" and (finite == finite.round()).all() and finite.nunique() == 1:
        text = f"{mean:.0f}"  # counts that agree over seeds: no spurious decimal
    else:
        mean_text, std_text = numbers(mean, std if n > 1 else 0.0, m.fmt)
        text = mean_text + (f"\n±{std_text}" if n > 1 else "")
    return text + (f"\n({n}/{expected})" if n < expected else "")


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def cell_grids(sub: pd.DataFrame, entry: str, metric: str, col: str | None, row: str | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(means, annotations) of one objective entry over the grid, rows top to bottom."""
    rows, cols = levels(sub, row), levels(sub, col)
    mine = sub[sub["entry"] == entry]
    expected = mine["seed"].nunique()
    grid = np.full((len(rows), len(cols)), np.nan)
    notes = np.full((len(rows), len(cols)), "not run", dtype=object)
    for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
        vals = select(mine, col, cv, row, rv)[metric]
        if vals.empty:
            continue
        grid[i, j] = mean_std(vals.astype(float))[0]
        notes[i, j] = annotation(metric, vals, expected)
    return grid, notes


def heatmap_figure(sub: pd.DataFrame, metric: str, col: str | None, row: str | None, n_modes: int,
                   title: str = "", width: float | None = None) -> plt.Figure:
    """One metric for every objective entry of ``sub`` side by side (up to four a row) on
    the metric's fixed scale, with one colour bar; ``width`` inches wide (default: single
    column for one objective on up to four columns, else double)."""
    m = catalog.get(metric)
    entries = list(dict.fromkeys(sub["entry"]))
    labels = dict(zip(sub["entry"], sub["label"]))
    rows, cols = levels(sub, row), levels(sub, col)
    per_row = len(entries) if len(entries) <= 4 else math.ceil(len(entries) / 2)
    n_rows = math.ceil(len(entries) / per_row)
    width = width or (DOUBLE_COLUMN if len(entries) > 1 or len(cols) > 4 else SINGLE_COLUMN)
    height = n_rows * (0.36 * len(rows) + 0.45) + 0.55
    fig, axs = plt.subplots(n_rows, per_row, figsize=(width, height), squeeze=False, constrained_layout=True,
                            sharex=True, sharey=True)
    colour_norm, colours = norm(m, n_modes), cmap(m)
    image = None
    for ax, entry in itertools.zip_longest(axs.flat, entries):
        if entry is None:
            ax.set_axis_off()
            continue
        grid, notes = cell_grids(sub, entry, metric, col, row)
        image = ax.imshow(colour_values(m, grid, n_modes), cmap=colours, norm=colour_norm, aspect="auto")
        for i, j in itertools.product(range(len(rows)), range(len(cols))):
            drawn_value = colour_values(m, grid[i, j], n_modes)
            rgba = colours(colour_norm(drawn_value)) if np.isfinite(grid[i, j]) else (1, 1, 1, 1)
            ax.text(j, i, notes[i, j], ha="center", va="center", fontsize=5, linespacing=0.95,
                    color=_text_colour(rgba))
        ax.set_xticks(range(len(cols)), [value_words(col, c) for c in cols] if col else [""])
        ax.set_yticks(range(len(rows)), [value_words(row, r) for r in rows] if row else [""])
        ax.tick_params(length=0, labelsize=6)
        ax.set_title(labels[entry])
    if col:
        fig.supxlabel(axis_name(col), fontsize=7)
    if row:
        fig.supylabel(axis_name(row), fontsize=7)
    bar = fig.colorbar(image, ax=axs, shrink=0.95, aspect=25 * n_rows, pad=0.02)
    bar.set_label(m.mean_label + ("\nlines: success band" if m.band else ""), fontsize=6)
    bar.ax.tick_params(labelsize=5)
    if m.best == "low":
        bar.ax.invert_yaxis()  # the best value at the top, as for every other metric
    if m.ticks:
        bar.set_ticks(list(m.ticks), labels=[tick_label(t) for t in m.ticks])
        bar.ax.minorticks_off()
    elif m.log:
        label_log_axis(bar.ax.yaxis)
    for edge in m.band or ():
        bar.ax.axhline(edge, color="black", lw=0.8)
    if title:
        fig.suptitle(title)
    return fig


def draw_heatmaps(df: pd.DataFrame, axes: Sequence[str], out_dir: Path, formats: Sequence[str] | None = None
                  ) -> list[Path]:
    """For every `drawn` metric the records have (see the module docstring):
    ``heatmap_<metric>[<facet>]`` with every objective, and ``heatmap_<metric>_<objective>[<facet>]``
    with one objective at single-column width (``<objective>``: its ``slug``), the same scale."""
    written = []
    n_modes = modes_in(df)
    for suffix, sub, col, row in facets(df, axes):
        title = cell_words(suffix.lstrip("_"))
        for m in drawn():
            if m.key not in sub or not sub[m.key].notna().any():
                continue
            fig = heatmap_figure(sub, m.key, col, row, n_modes, title)
            written.append(save_figure(fig, out_dir / f"heatmap_{m.key}{suffix}", formats))
            for slug, mine in sub.groupby("slug", sort=False):
                fig = heatmap_figure(mine, m.key, col, row, n_modes, title, width=SINGLE_COLUMN)
                written.append(save_figure(fig, out_dir / f"heatmap_{m.key}_{slug}{suffix}", formats))
    return written
