"""Training traces: every per-step diagnostic of one or more runs over generator steps.

    python -m analysis.traces results/runs/gram-demo
    python -m analysis.traces RUN_A RUN_B --smooth 100 --logx --out traces.png

Reads ``trace.csv`` (one row per generator step, one column per diagnostic) and
``record.json`` (the objective) of each record directory. One row of panels per run: the
first panel puts the generator loss and the critic's / projector's objective on shared
axes (for GRAM-net, as in the paper's trace figure: the generator's MMD loss and the
Pearson divergence D* the projector maximises); every other diagnostic gets a panel of its
own. Lines are moving averages over ``--smooth`` steps with the raw values faint behind.
Positive quantities the paper plots on a log scale (MMD, Pearson divergence) use one here.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import save_figure  # noqa: E402
from analysis.process import config_title  # noqa: E402

# The shared first panel per objective: generator loss, then the other player's objective.
# An objective not listed (a plugin) pairs loss_g with any other column named loss_*.
PAIRS: dict[str, tuple[str, ...]] = {
    "gram": ("loss_g", "pd"),
    "mmdgan": ("loss_g", "loss_critic"),
    "gan": ("loss_g", "loss_d"),
    "mmdnet": ("loss_g",),
}
LABELS = {
    "loss_g": "generator loss",
    "pd": "$D^*$ Pearson divergence (projector maximises)",
    "loss_critic": "critic loss",
    "loss_d": "discriminator loss",
    "mmd2": "MMD$^2$",
    "mean_ratio": "mean density ratio $\\hat r$",
    "loss_f": "projector loss $-(D^* + \\bar r)$",
    "ae": "autoencoder error",
    "d_real": "D(real)",
    "d_fake": "D(generated)",
}
GENERATOR_LOSS = {  # what loss_g is, per objective
    "gram": "generator loss $\\hat L_\\gamma$ (MMD)",
    "mmdnet": "generator loss (MMD)",
    "mmdgan": "generator loss (MMD + one-sided penalty)",
    "gan": "generator loss $-\\log D(G(z))$",
}
LOG_SCALE = {"pd", "mmd2"}  # plus loss_g where it is an MMD (see LOG_GENERATOR)
LOG_GENERATOR = {"gram", "mmdnet"}
COLOURS = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
PANEL_W, PANEL_H = 3.4, 2.4


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values (shorter at the start); NaN stays NaN."""
    x = np.asarray(values, dtype=np.float64)
    if window <= 1:
        return x.copy()
    ok = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    hi = np.arange(1, len(x) + 1)
    lo = np.maximum(hi - window, 0)
    count = ccnt[hi] - ccnt[lo]
    out = (csum[hi] - csum[lo]) / np.maximum(count, 1)
    out[~ok | (count == 0)] = np.nan
    return out


def panels_for(model: str, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Which diagnostics share which panel: the objective's pair first, then one per column."""
    pair = PAIRS.get(model) or tuple(["loss_g"] + [c for c in columns if c.startswith("loss_") and c != "loss_g"])
    pair = tuple(c for c in pair if c in columns)
    rest = [(c,) for c in columns if c not in pair]
    return ([pair] if pair else []) + rest


def uses_log(model: str, column: str, values: np.ndarray) -> bool:
    """Log y for MMD-like and divergence columns, when they are positive where finite."""
    wanted = column in LOG_SCALE or (column == "loss_g" and model in LOG_GENERATOR)
    v = values[np.isfinite(values)]
    return wanted and v.size > 0 and bool((v > 0).all())


def _symlog_threshold(values: np.ndarray, span: float = 100.0) -> float | None:
    """A linear-region width for a symlog axis when values span over ``span`` x their typical
    size (e.g. an early spike of the projector loss), else None (linear axis)."""
    v = np.abs(values[np.isfinite(values)])
    typical = float(np.median(v)) if v.size else 0.0
    return typical if typical > 0 and float(v.max()) > span * typical else None


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The run's per-step trace (indexed by step) and its record."""
    run_dir = Path(run_dir)
    trace = pd.read_csv(run_dir / "trace.csv", index_col="step")
    try:
        record = json.loads((run_dir / "record.json").read_text())
    except (OSError, json.JSONDecodeError):
        record = {}
    return trace, record


def _label(model: str, column: str) -> str:
    return GENERATOR_LOSS.get(model, LABELS["loss_g"]) if column == "loss_g" else LABELS.get(column, column)


def _draw_panel(ax, trace: pd.DataFrame, model: str, columns: Sequence[str], window: int) -> None:
    steps = trace.index.to_numpy() + 1  # row t holds the diagnostics of generator step t + 1
    for i, col in enumerate(columns):
        raw = trace[col].to_numpy(dtype=np.float64)
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(steps, raw, color=colour, alpha=0.2, lw=0.5)
        ax.plot(steps, moving_average(raw, window), color=colour, lw=1.2, label=_label(model, col))
    values = trace[list(columns)].to_numpy(dtype=np.float64)
    if all(uses_log(model, c, trace[c].to_numpy()) for c in columns):
        ax.set_yscale("log")
    elif (scale := _symlog_threshold(values)) is not None:
        ax.set_yscale("symlog", linthresh=scale)
    ax.tick_params(which="both", labelsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)


def draw_traces(runs: Sequence[tuple[str, pd.DataFrame, str]], window: int = 50,
                logx: bool = False) -> plt.Figure:
    """One row of panels per ``(title, trace, model)``; see the module docstring."""
    layouts = [panels_for(model, list(trace.columns)) for _, trace, model in runs]
    ncols = max(1, max(len(lay) for lay in layouts))
    fig, axs = plt.subplots(len(runs), ncols, figsize=(PANEL_W * ncols, PANEL_H * len(runs) + 0.3),
                            squeeze=False, constrained_layout=True)
    for row, ((title, trace, model), layout) in enumerate(zip(runs, layouts)):
        for j in range(ncols):
            ax = axs[row, j]
            if j >= len(layout):
                ax.set_axis_off()
                continue
            _draw_panel(ax, trace, model, layout[j], window)
            if logx:
                ax.set_xscale("log")
            ax.set_xlabel("generator step", fontsize=7)
        axs[row, 0].set_title(title, fontsize=9, loc="left")
    return fig


def run_title(run_dir: Path, record: Mapping[str, Any]) -> str:
    """Panel-row title: the run's config, directory name, and status when not ok."""
    status = record.get("status", "")
    flag = f" [{status}]" if status and status != "ok" else ""
    return f"{config_title(record.get('config', {}))} — {Path(run_dir).name}{flag}"


def write_traces(runs: Sequence[tuple[str, pd.DataFrame, str]], out: Path, window: int = 50,
                 logx: bool = False) -> Path:
    """`draw_traces` saved to ``out``."""
    fig = draw_traces(runs, window, logx)
    return save_figure(fig, out)


def save_traces(run_dirs: Sequence[Path], out: Path | None = None, window: int = 50, logx: bool = False) -> Path:
    """Draw the traces of ``run_dirs``; default output ``trace.png`` in the (first) run directory."""
    runs = []
    for d in run_dirs:
        trace, record = load_run(d)
        runs.append((run_title(d, record), trace, record.get("config", {}).get("model", "?")))
    return write_traces(runs, Path(out) if out else Path(run_dirs[0]) / "trace.png", window, logx)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.traces", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", type=Path, nargs="+", help="record directories holding trace.csv")
    p.add_argument("--smooth", type=int, default=50, help="moving-average window in steps (default 50; 1 = raw)")
    p.add_argument("--logx", action="store_true", help="log-scale step axis (to see the first iterations)")
    p.add_argument("--out", type=Path, help="output PNG (default: trace.png in the first run directory)")
    args = p.parse_args(argv)
    missing = [str(d) for d in args.run_dirs if not (d / "trace.csv").exists()]
    if missing or args.smooth < 1:
        msg = f"no trace.csv in {', '.join(missing)}" if missing else "--smooth must be at least 1"
        print(f"{p.prog}: error: {msg}", file=sys.stderr)
        return 2
    print(save_traces(args.run_dirs, args.out, args.smooth, args.logx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
