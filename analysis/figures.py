"""Shared plotting pieces: the paper style (sizes in printed inches, fonts readable at
single- and double-column width), figure files in several formats, and data-versus-samples
scatter panels in the paper's two colours.

Figures are drawn at their printed size (`SINGLE_COLUMN` 3.3 in, `DOUBLE_COLUMN` 6.9 in), so
a 7-pt label is 7 pt in the paper. PDFs are vector except the scatter points themselves,
which are rasterised at `DPI` (thousands of points as vector paths make PDFs of tens of MB).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

import objectives
from cli.options import DEFAULT_FIGURE_FORMATS, FIGURE_FORMATS
from metrics import catalog

DATA_COLOUR, SAMPLE_COLOUR = "tab:blue", "tab:orange"
FAIL_COLOUR = "tab:red"
SINGLE_COLUMN, DOUBLE_COLUMN = 3.3, 6.9  # inches
DPI = 300
FORMATS, DEFAULT_FORMATS = FIGURE_FORMATS, DEFAULT_FIGURE_FORMATS  # the --format option's (cli.options)
PAPER_STYLE = {
    "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 5, "ytick.labelsize": 5,
    "legend.fontsize": 6, "figure.titlesize": 8, "axes.linewidth": 0.5, "xtick.major.width": 0.5,
    "ytick.major.width": 0.5, "xtick.major.size": 2, "ytick.major.size": 2, "xtick.major.pad": 1.5,
    "ytick.major.pad": 1.5, "lines.linewidth": 1.0, "pdf.fonttype": 42, "ps.fonttype": 42,
    "savefig.dpi": DPI, "figure.dpi": 100, "legend.frameon": False,
}
plt.rcParams.update(PAPER_STYLE)


def save_figure(fig: plt.Figure, path: Path | str, formats: Sequence[str] | None = None) -> Path:
    """Write ``fig`` once per format (``path`` with each format's suffix; default: ``path``'s
    own suffix, or PNG) and close it (figures are many; open ones hold memory). Returns the
    first file written."""
    path = Path(path)
    own = path.suffix.lstrip(".").lower()
    stem = path.with_suffix("") if own in FORMATS else path  # "lr=0.001" is not a suffix
    formats = list(formats or [own if own in FORMATS else "png"])
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        if target.is_symlink():  # a link planted in a received folder is replaced, never written through
            target.unlink()
        fig.savefig(target, dpi=DPI)
        written.append(target)
    plt.close(fig)
    return written[0]


def draw_all(jobs: Sequence[Callable[[], object]]) -> list[object]:
    """Run independent figure-drawing ``jobs`` (each writes its own files) on every core this
    process may use, started in the order given (put the longest first), and return their
    results in that order: laying out and saving hundreds of figures is CPU-bound matplotlib
    work, about two minutes on one core for the ring experiment's two data sets."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [job() for job in jobs]
    # Processes (matplotlib holds the GIL), fresh for each call so that none keeps the plugins
    # and metrics of an earlier one; loky's, as the sweep's workers: they pickle partials and
    # metric lambdas, and never run the caller's script again. Loky restarts a worker whose
    # memory grew by 300 MB since its first job, which a sample grid's freed figures do: the
    # job goes on in a fresh worker, and the warning it prints is no news to a user.
    from joblib.externals.loky import ProcessPoolExecutor
    state = (objectives.loaded_plugins(), dict(catalog.REGISTRY))
    with warnings.catch_warnings(), ProcessPoolExecutor(workers) as pool:
        warnings.filterwarnings("ignore", "A worker stopped while some jobs were given to the executor")
        futures = [pool.submit(_as_in_parent, state, job) for job in jobs]
        return [f.result() for f in futures]


def _as_in_parent(state: tuple[tuple[str, ...], dict[str, catalog.Metric]], job: Callable[[], object]) -> object:
    """``job`` in a fresh worker process, after it loads the parent's plugins (their objectives,
    data sets, metrics) and registers every metric the parent's catalog has (one registered
    in code, not by a plugin, too): a figure of a registered metric is drawn wherever it runs."""
    plugins, metrics = state
    for spec in plugins:
        objectives.load_plugin(spec)
    for key, metric in metrics.items():
        if key not in catalog.REGISTRY:
            catalog.register(metric)
    return job()


class _ReadableLogLocator(LogLocator):
    """Major ticks of a log axis, spaced by the span it shows: powers of ten over more than
    three decades, 1-2-5 over one to three, every integer mantissa below one (where two or
    fewer fall inside, matplotlib's `LogLocator` steps linearly instead)."""

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        lo, hi = sorted((vmin, vmax))
        decades = np.log10(hi / lo) if lo > 0 else np.inf
        self.set_params(subs=(1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else np.arange(1.0, 10.0))
        return super().tick_values(vmin, vmax)


def label_log_axis(axis) -> None:
    """Readable labels on a log ``axis`` (``ax.yaxis``, a colour bar's) however narrow its
    range: at least two labelled ticks in plain numbers (``60``, not ``6x10^1``), FID over
    55-95 reads 60, 70, 80, 90. Set after the log scale; the spacing follows the final limits."""
    axis.set_major_locator(_ReadableLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(LogLocator(subs=np.arange(2.0, 10.0)))
    axis.set_minor_formatter(NullFormatter())


def legend_handles(samples_label: str = "generated", fail: bool = False) -> list[Line2D]:
    """Markers for data, generated samples and (with ``fail``) the frame of a failed run."""
    handles = [Line2D([], [], ls="", marker="o", ms=3, color=c, label=lab)
               for c, lab in ((DATA_COLOUR, "data"), (SAMPLE_COLOUR, samples_label))]
    if fail:
        handles.append(Line2D([], [], ls="", marker="s", ms=6, mfc="none", mec=FAIL_COLOUR, mew=1.2,
                              label="fails the success rule"))
    return handles


def data_limit(data: np.ndarray) -> float:
    """A symmetric axis limit that fits the data with a margin, rounded up to a half unit
    (the ring: +-3, as in the paper)."""
    d = np.asarray(data, dtype=np.float64)
    return float(np.ceil(2.0 * 1.1 * np.abs(d[np.isfinite(d)]).max()) / 2.0)


def scatter_panel(ax, data: np.ndarray, samples: np.ndarray, max_points: int = 2_000,
                  lim: float | None = None, size: float = 2.0) -> float:
    """Data (blue) and generated samples (orange) on ``ax`` (a 3-D axis for 3-D points),
    ticks on every axis, limits ``+-lim`` (default `data_limit`; a 3-D panel draws only the
    samples inside them, as a 2-D panel clips). Returns the fraction of finite samples that
    fall outside the panel (to be said, not hidden)."""
    d, s = np.asarray(data)[:max_points], np.asarray(samples)[:max_points]
    s = s[np.isfinite(s).all(1)] if len(s) else s.reshape(0, d.shape[1])
    kw = {"s": size, "alpha": 0.5, "linewidths": 0, "rasterized": True}
    lim = lim or data_limit(d)
    inside = (np.abs(s) <= lim).all(1)
    if d.shape[1] == 3:  # 3-D axes do not clip to their limits: points outside are left out here
        ax.computed_zorder = False  # samples over data, as in 2-D (depth sorting mixed them per panel)
        ax.scatter(d[:, 0], d[:, 1], d[:, 2], c=DATA_COLOUR, depthshade=False, **kw)
        ax.scatter(*s[inside].T, c=SAMPLE_COLOUR, depthshade=False, **kw)
        ax.set_zlim(-lim, lim)
        ax.set_box_aspect(None, zoom=0.8)  # room for the tick labels inside the panel
    else:
        ax.scatter(d[:, 0], d[:, 1], c=DATA_COLOUR, **kw)
        ax.scatter(s[:, 0], s[:, 1], c=SAMPLE_COLOUR, **kw)
        ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    if d.shape[1] == 3:  # two ticks on a 3-D axis: three collide at single-column width
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_ticks([-int(lim), int(lim)])
    else:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(3, integer=True, symmetric=True))
    ax.tick_params(length=1.5, pad=1)
    return float(1.0 - inside.mean()) if len(s) else 0.0


def save_scatter(path: Path, data: np.ndarray, samples: np.ndarray, title: str = "",
                 formats: Sequence[str] | None = None) -> None:
    """One scatter panel of samples over data at single-column width, saved once per format
    (`save_figure`)."""
    fig = plt.figure(figsize=(SINGLE_COLUMN, SINGLE_COLUMN), constrained_layout=True)
    ax = fig.add_subplot(projection="3d" if np.asarray(data).shape[1] == 3 else None)
    scatter_panel(ax, data, samples)
    ax.tick_params(labelsize=7)
    ax.set_title(title)
    ax.legend(handles=legend_handles(), loc="upper right")
    save_figure(fig, path, formats)
