"""The training process of one run, drawn from its snapshots (the paper's Fig. 1 layout).

    python -m analysis.process results/runs/gram-ring3d-df2
    python -m analysis.process RUN_DIR --steps 0,500,3000 --out fig.png

Columns are the snapshot steps stored in ``RUN_DIR/snapshots.npz`` (``python -m
sweeps.train ... --snapshot-steps``). Top row: data (blue) and fixed-noise samples
(orange) in data space (3-D axes for 3-D data, a tile of samples for images). Bottom row,
for objectives with a projector or encoder: the same points in the learned space, its two
coordinates when it is 2-D and otherwise a 2-D PCA fitted on the projected data of that
step (so each panel shows the directions the projector spreads the data along). Data-space
panels are limited to the data's range (`analysis.figures.data_limit`); samples outside
it are left out and counted ("k% off-panel").
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import store
from analysis.command import check_output_file
from analysis.figures import DOUBLE_COLUMN, legend_handles, save_figure, scatter_panel
from analysis.frames import cell_words, dataset_words
from cli import Parser, UsageError, clean_exit, fail
from cli.options import add_options

PANEL = 2.0  # inches per panel, at most (a row of them fits double-column width)
LEGEND = legend_handles()


def pca_2d(fit: np.ndarray, *others: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Project ``fit`` and ``others`` on the top two principal axes of ``fit``.

    Returns the projected arrays (``fit`` first) and the fraction of ``fit``'s variance the
    two axes explain. Axis signs are fixed (largest loading positive) so that panels of
    neighbouring steps do not flip at random.
    """
    fit = np.asarray(fit, dtype=np.float64)
    mean = fit.mean(0)
    _, sv, vt = np.linalg.svd(fit - mean, full_matrices=False)
    axes = vt[:2]
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
    explained = float((sv[:2] ** 2).sum() / max((sv ** 2).sum(), 1e-300))
    return [(np.asarray(a, dtype=np.float64) - mean) @ axes.T for a in (fit, *others)], explained


def projected_view(features_data: np.ndarray, features_samples: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    """2-D coordinates of projected data and samples, and a label saying what they are."""
    df = features_data.shape[1]
    if df == 2:
        return features_data, features_samples, "projected space ($D_f$=2)\nits two coordinates"
    if df == 1:  # nothing to reduce: spread the points along y by their index
        ys = [np.linspace(0, 1, len(a))[:, None] for a in (features_data, features_samples)]
        return (np.hstack([features_data, ys[0]]), np.hstack([features_samples, ys[1]]),
                "projected space ($D_f$=1)\nagainst point index")
    (d, s), explained = pca_2d(features_data, features_samples)
    return d, s, f"projected space ($D_f$={df})\n2-D PCA, {explained:.0%} of variance"


def _view_limits(ax, *arrays: np.ndarray, pad: float = 0.08) -> None:
    """Fit the axis to the bulk (0.5-99.5 %) of all points, so far outliers do not shrink the view."""
    pts = np.concatenate([a[np.isfinite(a).all(1)] for a in arrays])
    if not len(pts):
        return
    lo, hi = np.percentile(pts, [0.5, 99.5], axis=0)
    span = np.maximum(hi - lo, 1e-9)
    ax.set_xlim(lo[0] - pad * span[0], hi[0] + pad * span[0])
    ax.set_ylim(lo[1] - pad * span[1], hi[1] + pad * span[1])


def _tiles(images: np.ndarray, n: int = 16) -> np.ndarray:
    """The first ``n`` images ``(n, C, H, W)`` as one square mosaic ``(H', W', C)`` in [0, 1]."""
    x = np.asarray(images[:n], dtype=np.float64)
    x = x.reshape(len(x), -1, *x.shape[-2:]) if x.ndim == 4 else x[:, None]
    lo, hi = np.nanmin(x), np.nanmax(x)
    x = (x - lo) / (hi - lo if hi > lo else 1.0)
    side = int(np.ceil(np.sqrt(len(x))))
    x = np.concatenate([x, np.zeros((side * side - len(x), *x.shape[1:]))])
    c, h, w = x.shape[1:]
    grid = x.reshape(side, side, c, h, w).transpose(0, 3, 1, 4, 2).reshape(side * h, side * w, c)
    return grid[..., 0] if c == 1 else grid[..., :3]


def _data_panel(fig, nrows: int, ncols: int, index: int, data: np.ndarray, samples: np.ndarray):
    """Top-row panel: scatter in 2-D/3-D, PCA for other vectors, a mosaic for images."""
    if data.ndim > 2:
        ax = fig.add_subplot(nrows, ncols, index)
        ax.imshow(_tiles(samples), cmap="gray")
        ax.set_axis_off()
        return ax
    ax = fig.add_subplot(nrows, ncols, index, projection="3d" if data.shape[1] == 3 else None)
    if data.shape[1] not in (2, 3):
        (data, samples), _ = pca_2d(data, samples)
    off = scatter_panel(ax, data, samples)
    if off > 0.01:
        text = ax.text2D if data.shape[1] == 3 else ax.text
        text(0.02, 0.98, f"{off:.0%} off-panel", transform=ax.transAxes, ha="left", va="top", fontsize=5)
    return ax


def _projected_panel(ax, features_data: np.ndarray, features_samples: np.ndarray) -> str:
    """Bottom-row panel: the learned space with ticks, fitted to its points; returns its label."""
    fd, fs = (a[np.isfinite(a).all(1)] for a in (features_data, features_samples))
    if not len(fd):  # a diverged projector: nothing to draw
        ax.text(0.5, 0.5, "non-finite features", ha="center", va="center", transform=ax.transAxes)
        return "projected space"
    d, s, label = projected_view(fd, fs)
    scatter_panel(ax, d, s)
    ax.set_aspect("auto")
    _view_limits(ax, d, s)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(4))
    return label


def select_steps(stored: np.ndarray, wanted: Sequence[int] | None) -> list[int]:
    """Indices of the ``wanted`` steps among the ``stored`` ones (all when None)."""
    stored = [int(s) for s in stored]
    if not wanted:
        return list(range(len(stored)))
    missing = [w for w in wanted if w not in stored]
    if missing:
        raise ValueError(f"no snapshot at step(s) {', '.join(map(str, missing))}; "
                         f"stored: {', '.join(map(str, stored))}")
    return [stored.index(w) for w in wanted]


def draw_process(snaps: dict[str, np.ndarray], steps: Sequence[int] | None = None,
                 title: str = "") -> plt.Figure:
    """The process figure for one run's snapshots (see the module docstring)."""
    idx = select_steps(snaps["steps"], steps)
    features = "features_data" in snaps and "features_samples" in snaps
    nrows, ncols = 1 + features, len(idx)
    panel = min(PANEL, DOUBLE_COLUMN / ncols)
    fig = plt.figure(figsize=(panel * ncols, panel * nrows + 0.5), constrained_layout=True)
    for j, k in enumerate(idx):
        ax = _data_panel(fig, nrows, ncols, j + 1, snaps["data"], snaps["samples"][k])
        ax.set_title(f"step {int(snaps['steps'][k])}" + ("\ndata space" if j == 0 else ""))
        if features:
            ax = fig.add_subplot(nrows, ncols, ncols + j + 1)
            ax.set_title(_projected_panel(ax, snaps["features_data"][k], snaps["features_samples"][k]), fontsize=6)
    fig.legend(handles=LEGEND, loc="outside lower center", ncols=len(LEGEND))
    if title:
        fig.suptitle(title)
    return fig


def config_title(cfg: Mapping[str, Any], name: str | None = None) -> str:
    """``GRAM-net on the 3-D ring, $D_f$ 2 (noise dimension 4, generator width 100)`` from a
    run's config dict and its objective's display name (`objectives.Objective.describe`, as
    a record stores it; default the config's objective name)."""
    hp = cfg.get("hp", {})
    extra = f", $D_f$ {hp['df']}" if "df" in hp else ""
    cell = cell_words({k: cfg.get(k, "?") for k in ("noise_dim", "width")})
    return f"{name or cfg.get('model', '?')} on the {dataset_words(cfg.get('dataset', '?'))}{extra} ({cell})"


def save_process(run_dir: Path, out: Path | None = None, steps: Sequence[int] | None = None,
                 snaps: dict[str, np.ndarray] | None = None, title: str | None = None,
                 formats: Sequence[str] | None = None) -> Path:
    """Draw ``run_dir``'s process figure to ``out`` (default ``run_dir/process.png``), once
    per format in ``formats`` (default: ``out``'s own); a damaged record
    (`store.DamagedRecord`) is refused before its files are read."""
    if snaps is None or title is None:
        record = store.read(run_dir)
        title = config_title(record.config, record.display_name) if title is None else title
    snaps = store.load_snapshots(run_dir) if snaps is None else snaps
    fig = draw_process(snaps, steps, title)
    out = Path(out) if out else Path(run_dir) / "process.png"
    return save_figure(fig, out, formats)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m analysis.process", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a run's record directory holding snapshots.npz")
    add_options(p, "snapshot_steps", "out", "format", shown={"out": "RUN_DIR/process.png"},
                notes={"snapshot_steps": "here: which of the stored ones to draw (default: all)",
                       "out": "the figure file (its suffix is replaced per --format)"})
    args = p.parse_args(argv)
    if not args.run_dir.is_dir():
        fail(p.prog, f"{args.run_dir} does not exist or is not a record directory")
    try:
        check_output_file(args.out or args.run_dir / "process.png")
        with clean_exit(p.prog):
            print(save_process(args.run_dir, args.out, args.snapshot_steps, formats=args.format))
    except (FileNotFoundError, ValueError, UsageError, PermissionError, store.DamagedRecord) as err:
        fail(p.prog, str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
