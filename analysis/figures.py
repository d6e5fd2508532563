"""Shared plotting pieces: data-versus-samples scatter panels in the paper's two colours."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DATA_COLOUR, SAMPLE_COLOUR = "tab:blue", "tab:orange"


def save_figure(fig: plt.Figure, path: Path | str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` and close it (figures are many; open ones hold memory)."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def scatter_panel(ax, data: np.ndarray, samples: np.ndarray, max_points: int = 2_000,
                  lim: float | None = None) -> None:
    """Data (blue) and generated samples (orange) on ``ax``; 3-D points use a 3-D axis."""
    d, s = np.asarray(data)[:max_points], np.asarray(samples)[:max_points]
    s = s[np.isfinite(s).all(1)]
    kw = {"s": 2, "alpha": 0.5, "linewidths": 0}
    if d.shape[1] == 3:
        ax.scatter(d[:, 0], d[:, 1], d[:, 2], c=DATA_COLOUR, **kw)
        ax.scatter(s[:, 0], s[:, 1], s[:, 2], c=SAMPLE_COLOUR, **kw)
    else:
        ax.scatter(d[:, 0], d[:, 1], c=DATA_COLOUR, **kw)
        ax.scatter(s[:, 0], s[:, 1], c=SAMPLE_COLOUR, **kw)
        ax.set_aspect("equal")
    lim = lim or 1.5 * float(np.abs(d).max())
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    if d.shape[1] == 3:
        ax.set_zlim(-lim, lim)
        ax.set_zticks([])
    ax.set_xticks([])
    ax.set_yticks([])


def save_scatter(path: Path, data: np.ndarray, samples: np.ndarray, title: str = "") -> None:
    """One scatter panel of samples over data, saved as a PNG."""
    fig = plt.figure(figsize=(4, 4))
    ax = fig.add_subplot(projection="3d" if np.asarray(data).shape[1] == 3 else None)
    scatter_panel(ax, data, samples)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
