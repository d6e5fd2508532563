"""Heatmaps of the ring metrics over a sweep's grid, on colour scales fixed by the metric
alone, never by the data, so two figures (or two objectives) can be compared by colour and
the best possible value always gets the same colour:

- counts of modes on 0..n_modes, fractions and success rates on 0..1, mode KL on
  0..log n_modes (its largest possible value): the best end is the top colour of viridis;
- MMD^2 on a log scale from 1e-4 (about the noise floor of the unbiased estimate with 2,000
  points) to 2 x the kernel's largest value (its largest possible value); values below the
  floor (the unbiased estimate can be negative) take the floor's colour;
- spread on a log scale centred on 1 (the data), 1/8..8, on a diverging map whose centre
  (light) is best; the colour bar marks the success band 1/sqrt 2..sqrt 2.

Each cell is annotated with the mean ± std over seeds (one seed: the value; success: the
successful seeds out of all), with precision matching the scale, and ``(k/n)`` where only k
of the objective's n seeds have a value (a missing or crashed run, or an undefined metric).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import DOUBLE_COLUMN, SINGLE_COLUMN, save_figure  # noqa: E402
from analysis.frames import axis_name, facets, levels, select  # noqa: E402
from analysis.stats import mean_std  # noqa: E402
from analysis.tables import numbers  # noqa: E402
from metrics.ring import MMD_SIGMAS, SUCCESS_SPREAD  # noqa: E402

MISSING_COLOUR = "0.88"


@dataclass(frozen=True)
class Scale:
    """How one metric is coloured and written: its fixed limits (given the number of modes),
    linear or log, which end is best, and the annotation's format."""

    title: str
    short: str  # a table column's name
    limits: Callable[[int], tuple[float, float]]
    best: str  # "high", "low" or "centre"
    fmt: str = ".2f"
    log: bool = False

    def norm(self, n_modes: int) -> mcolors.Normalize:
        lo, hi = self.limits(n_modes)
        return mcolors.LogNorm(lo, hi) if self.log else mcolors.Normalize(lo, hi)

    def cmap(self) -> mcolors.Colormap:
        name = {"high": "viridis", "low": "viridis_r", "centre": "PuOr"}[self.best]
        return matplotlib.colormaps[name].with_extremes(bad=MISSING_COLOUR)

    def colour_values(self, values: np.ndarray, n_modes: int) -> np.ndarray:
        """``values`` as drawn: clipped into the limits (so a log scale never hides a value
        at or below zero); NaN stays NaN (grey)."""
        lo, hi = self.limits(n_modes)
        return np.clip(np.asarray(values, dtype=np.float64), lo, hi)

    def describe(self, n_modes: int) -> str:
        """The fixed range in words, e.g. ``0 to 8, best 8 at the top``."""
        lo, hi = self.limits(n_modes)
        best = {"high": f"best {hi:.3g} at the top", "low": f"best {lo:.3g} at the top",
                "centre": "best 1 at the light centre"}[self.best]
        return f"{'log ' if self.log else ''}{lo:.3g} to {hi:.3g}, {best}"


def _unit(_: int) -> tuple[float, float]:
    return 0.0, 1.0


def _modes(n_modes: int) -> tuple[float, float]:
    return 0.0, float(n_modes)


SCALES = {
    "success": Scale("success rate over seeds", "success", _unit, "high"),
    "modes_covered_strict": Scale("modes strictly covered", "modes (strict)", _modes, "high", ".1f"),
    "modes_covered": Scale("modes covered (PacGAN)", "modes (PacGAN)", _modes, "high", ".1f"),
    "hq_fraction": Scale("high-quality fraction", "hq fraction", _unit, "high"),
    "spread": Scale("spread (data = 1)\nlines: success band", "spread", lambda _: (1 / 8, 8.0), "centre",
                    log=True),
    "mode_kl": Scale("mode KL from uniform (nats)", "mode KL", lambda n: (0.0, math.log(n)), "low"),
    "mmd2": Scale("MMD$^2$ to true samples", "MMD^2", lambda _: (1e-4, 2.0 * len(MMD_SIGMAS)), "low", ".2g", log=True),
    "finite_fraction": Scale("finite fraction", "finite fraction", _unit, "high"),
}
SPREAD_TICKS = {1 / 8: "1/8", 1 / 4: "1/4", 1 / 2: "1/2", 1.0: "1", 2.0: "2", 4.0: "4", 8.0: "8"}
NOTE = ("Cells: mean ± std over seeds (success: successful seeds / seeds); (k/n): only k of the n seeds "
        "have a value; n/a: undefined for every seed (spread: no mode strictly covered); grey: no value.")


def annotation(metric: str, values: pd.Series, expected: int) -> str:
    """The text of one cell (see the module docstring)."""
    scale = SCALES[metric]
    v = values.astype(float)
    if metric == "success":
        return f"{int(v.sum())}/{len(v)}" + (f"\n({len(v)}/{expected})" if len(v) < expected else "")
    mean, std, n = mean_std(v)
    if n == 0:
        return "n/a"
    finite = v[np.isfinite(v)]
    if scale.fmt == ".1f" and (finite == finite.round()).all() and finite.nunique() == 1:
        text = f"{mean:.0f}"  # counts that agree over seeds: no spurious decimal
    else:
        m, s = numbers(mean, std if n > 1 else 0.0, scale.fmt)
        text = m + (f"\n±{s}" if n > 1 else "")
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
                   title: str = "") -> plt.Figure:
    """One metric for every objective entry of ``sub`` side by side (up to four a row) on
    the metric's fixed scale, with one colour bar."""
    scale = SCALES[metric]
    entries = list(dict.fromkeys(sub["entry"]))
    labels = dict(zip(sub["entry"], sub["label"]))
    rows, cols = levels(sub, row), levels(sub, col)
    per_row = len(entries) if len(entries) <= 4 else math.ceil(len(entries) / 2)
    n_rows = math.ceil(len(entries) / per_row)
    width = DOUBLE_COLUMN if len(entries) > 1 or len(cols) > 4 else SINGLE_COLUMN
    height = n_rows * (0.36 * len(rows) + 0.45) + 0.55
    fig, axs = plt.subplots(n_rows, per_row, figsize=(width, height), squeeze=False, constrained_layout=True,
                            sharex=True, sharey=True)
    norm, cmap = scale.norm(n_modes), scale.cmap()
    image = None
    for ax, entry in itertools.zip_longest(axs.flat, entries):
        if entry is None:
            ax.set_axis_off()
            continue
        grid, notes = cell_grids(sub, entry, metric, col, row)
        image = ax.imshow(scale.colour_values(grid, n_modes), cmap=cmap, norm=norm, aspect="auto")
        for i, j in itertools.product(range(len(rows)), range(len(cols))):
            rgba = cmap(norm(scale.colour_values(grid[i, j], n_modes))) if np.isfinite(grid[i, j]) else (1, 1, 1, 1)
            ax.text(j, i, notes[i, j], ha="center", va="center", fontsize=5, linespacing=0.95,
                    color=_text_colour(rgba))
        ax.set_xticks(range(len(cols)), [str(c) for c in cols] if col else [""])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows] if row else [""])
        ax.tick_params(length=0, labelsize=6)
        ax.set_title(labels[entry])
    if col:
        fig.supxlabel(axis_name(col), fontsize=7)
    if row:
        fig.supylabel(axis_name(row), fontsize=7)
    bar = fig.colorbar(image, ax=axs, shrink=0.95, aspect=25 * n_rows, pad=0.02)
    bar.set_label(scale.title, fontsize=6)
    bar.ax.tick_params(labelsize=5)
    if scale.best == "low":
        bar.ax.invert_yaxis()  # the best value at the top, as for every other metric
    if metric == "spread":
        bar.set_ticks(list(SPREAD_TICKS), labels=list(SPREAD_TICKS.values()))
        bar.ax.minorticks_off()
        for edge in (1 / SUCCESS_SPREAD, SUCCESS_SPREAD):
            bar.ax.axhline(edge, color="black", lw=0.8)
    if title:
        fig.suptitle(title)
    return fig


def draw_heatmaps(df: pd.DataFrame, axes: Sequence[str], out_dir: Path, formats: Sequence[str] | None = None
                  ) -> list[Path]:
    """``heatmap_<metric>[<facet>]`` for every metric the records have (see the module docstring)."""
    written = []
    n_modes = int(df["n_modes"].dropna().max()) if "n_modes" in df and df["n_modes"].notna().any() else 1
    for suffix, sub, col, row in facets(df, axes):
        for metric in SCALES:
            if metric not in sub or not sub[metric].notna().any():
                continue
            fig = heatmap_figure(sub, metric, col, row, n_modes, suffix.lstrip("_").replace("_", ", "))
            written.append(save_figure(fig, out_dir / f"heatmap_{metric}{suffix}", formats))
    return written
