"""Training traces: every per-step diagnostic of one or more runs over generator steps.

    python -m analysis.traces results/runs/gram-demo
    python -m analysis.traces RUN_A RUN_B --smooth 100 --logx --out traces.png

Reads ``trace.csv`` (one row per generator step, one column per diagnostic) and
``record.json`` of each record directory. One row of panels per run: the first panel puts
the diagnostics the objective names as its ``trace_pair`` on shared axes (the generator's
loss and the other player's objective; for GRAM-net, as in the paper's trace figure, the
generator's MMD loss and the Pearson divergence D* the projector maximises); every other
diagnostic gets a panel of its own. Labels and log scales come from the objective's
``diagnostics`` as stored in the record. Lines are moving averages over ``--smooth`` steps
with the raw values faint behind.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import store  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from analysis.process import config_title  # noqa: E402
from analysis.command import check_output_file  # noqa: E402
from cli import Parser, add_out_arg, clean_exit, fail  # noqa: E402

Description = Mapping[str, Any]  # an objective's self-description (`objectives.Objective.describe`)
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


def panels_for(objective: Description, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Which diagnostics share which panel: the objective's pair first, then one per column."""
    pair = tuple(c for c in objective.get("trace_pair", ("loss_g",)) if c in columns)
    rest = [(c,) for c in columns if c not in pair]
    return ([pair] if pair else []) + rest


def _meta(objective: Description, column: str) -> Mapping[str, Any]:
    return objective.get("diagnostics", {}).get(column, {})


def uses_log(objective: Description, column: str, values: np.ndarray) -> bool:
    """Log y where the objective asks for it and the values are positive where finite."""
    v = values[np.isfinite(values)]
    return bool(_meta(objective, column).get("log")) and v.size > 0 and bool((v > 0).all())


def _symlog_threshold(values: np.ndarray, span: float = 100.0) -> float | None:
    """A linear-region width for a symlog axis when values span over ``span`` x their typical
    size (e.g. an early spike of the projector loss), else None (linear axis)."""
    v = np.abs(values[np.isfinite(values)])
    typical = float(np.median(v)) if v.size else 0.0
    return typical if typical > 0 and float(v.max()) > span * typical else None


def _label(objective: Description, column: str) -> str:
    return _meta(objective, column).get("label", column)


def _draw_panel(ax, trace: pd.DataFrame, objective: Description, columns: Sequence[str], window: int) -> None:
    steps = trace.index.to_numpy() + 1  # row t holds the diagnostics of generator step t + 1
    for i, col in enumerate(columns):
        raw = trace[col].to_numpy(dtype=np.float64)
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(steps, raw, color=colour, alpha=0.2, lw=0.5)
        ax.plot(steps, moving_average(raw, window), color=colour, lw=1.2, label=_label(objective, col))
    values = trace[list(columns)].to_numpy(dtype=np.float64)
    if all(uses_log(objective, c, trace[c].to_numpy()) for c in columns):
        ax.set_yscale("log")
    elif (scale := _symlog_threshold(values)) is not None:
        ax.set_yscale("symlog", linthresh=scale)
    ax.tick_params(which="both", labelsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)


def draw_traces(runs: Sequence[tuple[str, pd.DataFrame, Description]], window: int = 50,
                logx: bool = False) -> plt.Figure:
    """One row of panels per ``(title, trace, objective description)``; see the module docstring."""
    layouts = [panels_for(objective, list(trace.columns)) for _, trace, objective in runs]
    ncols = max(1, max(len(lay) for lay in layouts))
    fig, axs = plt.subplots(len(runs), ncols, figsize=(PANEL_W * ncols, PANEL_H * len(runs) + 0.3),
                            squeeze=False, constrained_layout=True)
    for row, ((title, trace, objective), layout) in enumerate(zip(runs, layouts)):
        for j in range(ncols):
            ax = axs[row, j]
            if j >= len(layout):
                ax.set_axis_off()
                continue
            _draw_panel(ax, trace, objective, layout[j], window)
            if logx:
                ax.set_xscale("log")
            ax.set_xlabel("generator step", fontsize=7)
        axs[row, 0].set_title(title, fontsize=9, loc="left")
    return fig


def run_title(record: store.Record) -> str:
    """Panel-row title: the run's config, directory name, and status when not ok."""
    flag = f" [{record.status}]" if record.status != "ok" else ""
    return f"{config_title(record.config, record.display_name)} — {record.path.name}{flag}"


def write_traces(runs: Sequence[tuple[str, pd.DataFrame, Description]], out: Path, window: int = 50,
                 logx: bool = False) -> Path:
    """`draw_traces` saved to ``out``."""
    fig = draw_traces(runs, window, logx)
    return save_figure(fig, out)


def read_records(run_dirs: Sequence[Path], prog: str) -> list[store.Record]:
    """The record of every directory, or exit 2 with one line naming the first that has none."""
    records = []
    for d in run_dirs:
        try:
            records.append(store.read(d))
        except FileNotFoundError:
            fail(prog, f"{d}: no record there (record.json missing)")
        except store.DamagedRecord as err:
            fail(prog, f"{d}: {err}")
    return records


def save_traces(records: Sequence[store.Record], out: Path | None = None, window: int = 50,
                logx: bool = False) -> Path:
    """Draw the traces of ``records``; default output ``trace.png`` in the first one's directory."""
    runs = [(run_title(r), store.load_trace(r.path), r.objective) for r in records]
    return write_traces(runs, Path(out) if out else records[0].path / "trace.png", window, logx)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m analysis.traces", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", type=Path, nargs="+", help="record directories holding trace.csv")
    p.add_argument("--smooth", type=int, default=50, help="moving-average window in steps (default 50; 1 = raw)")
    p.add_argument("--logx", action="store_true", help="log-scale step axis (to see the first iterations)")
    add_out_arg(p, None, "output PNG (default: trace.png in the first run directory)")
    args = p.parse_args(argv)
    if args.smooth < 1:
        fail(p.prog, "--smooth must be at least 1")
    records = read_records(args.run_dirs, p.prog)
    try:
        check_output_file(args.out or records[0].path / "trace.png")
    except PermissionError as err:
        fail(p.prog, str(err))
    with clean_exit(p.prog):
        print(save_traces(records, args.out, args.smooth, args.logx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
