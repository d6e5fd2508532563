"""The paper's sample figure (Fig. 2 and appendix Fig. 7): one panel per grid cell, samples
of one seed drawn over the data.

Layout as in the paper: columns are the first grid axis (noise dimension 2, 4, 8, 16) under
one column header, rows the second (generator width 20, 100, 200, top to bottom) beside one
row header; ticks in every panel; one legend. A red frame marks a panel whose shown run
fails the success rule (`metrics.success.SUCCESS_RULE`); panels say "not run", "crashed" or
"diverged" where there is nothing to draw, and "k% off-panel" where samples fall outside the
fixed limits that fit the data. 3-D data keep 3-D panels with one viewing angle.

Figures: ``samples_<objective>`` at single-column width, and ``samples_all`` with the
objectives as (a), (b), ... sub-figures two abreast at double-column width (six at most
per figure; more go to ``samples_all_2``, ...).
"""
from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

import store
from analysis.figures import (
    DOUBLE_COLUMN,
    FAIL_COLOUR,
    SINGLE_COLUMN,
    data_limit,
    legend_handles,
    save_figure,
    scatter_panel,
)
from analysis.frames import axis_name, facets, levels, select, value_words

POINTS = 1_000  # data and samples per panel
PER_FIGURE = 6  # objectives in one samples_all figure
HEADERS = 0.55  # inches of column header, column values and caption around a block of panels
LEGEND = 0.2  # inches of the legend above everything
MARGIN, TICKS = 0.6, 0.18  # inches of row header and labels left of a block; of tick labels per panel


def reference_points(dataset: str, n: int = POINTS) -> np.ndarray | None:
    """Fresh true points of a toy data set (fixed seed), or None for other data."""
    import data
    from core import streams
    try:
        ds = data.get(dataset)
    except KeyError:
        return None
    return ds.sample(n, streams.generator(0, "display")).numpy() if ds.kind == "toy" else None


def shown_seed(df: pd.DataFrame) -> int:
    """The seed a grid shows: the lowest one run."""
    return int(df["seed"].min())


def _text(ax):
    """How to put text on ``ax`` in axes coordinates: 3-D axes need text2D."""
    return ax.text2D if hasattr(ax, "text2D") else ax.text


def _mark(ax, text: str) -> None:
    _text(ax)(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=6, color=FAIL_COLOUR)


def _panel(ax, run: pd.Series | None, reference: np.ndarray, lim: float, size: float = 1.0) -> bool:
    """Draw one cell's run; returns whether it fails the success rule."""
    if run is None:
        scatter_panel(ax, reference, np.zeros((0, reference.shape[1])), POINTS, lim, size)
        _mark(ax, "not run")
        return False
    samples = store.load_samples(run["path"]) if run["status"] != "crashed" else np.zeros((0, reference.shape[1]))
    off = scatter_panel(ax, reference, samples, POINTS, lim, size)
    if run["status"] != "ok":
        _mark(ax, run["status"])
    elif off > 0.01:
        _text(ax)(0.97, 0.03, f"{off:.0%} off-panel", transform=ax.transAxes, ha="right", va="bottom", fontsize=4.5)
    failed = not bool(run.get("success", False))
    if failed and hasattr(ax, "text2D"):  # 3-D axes have no spines to colour, nor room for 2-D artists
        ax.figure.add_artist(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, ec=FAIL_COLOUR, lw=1.2))
    elif failed:
        for spine in ax.spines.values():
            spine.set(edgecolor=FAIL_COLOUR, linewidth=1.2)
    return failed


def draw_block(fig, sub: pd.DataFrame, entry: str, col: str | None, row: str | None, reference: np.ndarray,
               seed: int, caption: str) -> bool:
    """One objective's panels into ``fig`` (a figure or sub-figure) with its headers and
    ``caption`` below; returns whether any shown run fails the success rule."""
    cols, rows = levels(sub, col), levels(sub, row)
    three_d = reference.shape[1] == 3
    axs = fig.subplots(len(rows), len(cols), squeeze=False, subplot_kw={"projection": "3d"} if three_d else {})
    lim = data_limit(reference)
    mine = sub[(sub["entry"] == entry) & (sub["seed"] == seed)]
    failed = False
    for (i, rv), (j, cv) in itertools.product(enumerate(rows), enumerate(cols)):
        ax = axs[i, j]
        cell = select(mine, col, cv, row, rv)
        failed |= _panel(ax, cell.iloc[0] if len(cell) else None, reference, lim)
        if i == 0 and col:
            ax.set_title(value_words(col, cv), fontsize=7, pad=2)
        if j == 0 and row:
            _text(ax)(-0.42, 0.5, value_words(row, rv), transform=ax.transAxes, ha="right", va="center", fontsize=7)
    if col:
        fig.suptitle(axis_name(col), fontsize=7)
    if row:
        fig.supylabel(axis_name(row), fontsize=7)
    fig.supxlabel(caption, fontsize=8)
    return failed


def _figure(width: float, across: int, down: int, nr: int, nc: int) -> plt.Figure:
    """A figure ``width`` inches wide whose height fits ``across`` x ``down`` blocks of ``nr``
    x ``nc`` square panels (row labels take ``MARGIN``, tick labels ``TICKS`` a panel)."""
    panel = (width / across - MARGIN) / nc - TICKS
    return plt.figure(figsize=(width, down * (nr * (panel + TICKS) + HEADERS) + LEGEND), constrained_layout=True)


def _legend(fig, seed: int, failed: bool) -> None:
    handles = legend_handles(f"generated (seed {seed})", fail=failed)
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), handletextpad=0.1,
               columnspacing=0.8, borderaxespad=0.2)


def draw_sample_grids(df: pd.DataFrame, axes: Sequence[str], dataset: str, out_dir: Path,
                      formats: Sequence[str] | None = None) -> list[Path]:
    """``samples_<objective>`` and ``samples_all`` (see the module docstring); nothing for
    data sets without points to draw."""
    reference = reference_points(dataset)
    if reference is None or df.empty:
        return []
    written = []
    entries = list(dict.fromkeys(df["entry"]))
    slugs, labels = dict(zip(df["entry"], df["slug"])), dict(zip(df["entry"], df["label"]))
    seed = shown_seed(df)
    for suffix, sub, col, row in facets(df, axes):
        nc, nr = len(levels(sub, col)), len(levels(sub, row))
        for entry in entries:
            fig = _figure(SINGLE_COLUMN if nc <= 4 else DOUBLE_COLUMN, 1, 1, nr, nc)
            _legend(fig, seed, draw_block(fig.subfigures(1, 1), sub, entry, col, row, reference, seed, labels[entry]))
            written.append(save_figure(fig, out_dir / f"samples_{slugs[entry]}{suffix}", formats))
        if len(entries) < 2:
            continue
        pages = [entries[i:i + PER_FIGURE] for i in range(0, len(entries), PER_FIGURE)]
        for page, chunk in enumerate(pages):
            down = math.ceil(len(chunk) / 2)
            fig = _figure(DOUBLE_COLUMN, 2, down, nr, nc)
            failed = False
            subfigs = fig.subfigures(down, 2, squeeze=False, wspace=0.02, hspace=0.02)
            for k, (sf, entry) in enumerate(itertools.zip_longest(subfigs.flat, chunk)):
                if entry is None:
                    continue
                letter = string.ascii_lowercase[page * PER_FIGURE + k]
                failed |= draw_block(sf, sub, entry, col, row, reference, seed, f"({letter}) {labels[entry]}")
            _legend(fig, seed, failed)
            name = f"samples_all{suffix}" + (f"_{page + 1}" if page else "")
            written.append(save_figure(fig, out_dir / name, formats))
    return written
