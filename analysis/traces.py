"""Training traces: every per-step diagnostic of one or more runs over generator steps.

    python -m analysis.traces results/runs/gram-demo
    python -m analysis.traces RUN_A RUN_B --smooth 100 --logx --out traces.png
    python -m analysis.traces results/stability --cell noise_dim=4_width=100 --out figs/ --format pdf

Reads ``trace.csv`` (one row per generator step, one column per diagnostic) and
``record.json`` of each record directory. One row of panels per run: the first panel puts
the diagnostics the objective names as its ``trace_pair`` on shared axes (the generator's
loss and the other player's objective; for GRAM-net, as in the paper's trace figure, the
generator's MMD loss and the Pearson divergence D*, which Julia's projector maximises); every other
diagnostic gets a panel of its own. Labels and log scales come from the objective's
``diagnostics`` as stored in the record. Lines are moving averages over ``--smooth`` steps
with the raw values faint behind.

Given a results directory instead (any sweep's, or one setting's), it draws one figure per
grid cell with every objective side by side, a panel each: the objective's pair of
diagnostics as the median over seeds of their moving averages, with a band over the
seeds' range (`draw_bands`; ``--cell`` picks cells). ``--format`` sets the files written.
"""
from __future__ import annotations

import itertools
import sys
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import store
from analysis.command import check_output_file
from analysis.figures import DOUBLE_COLUMN, SINGLE_COLUMN, label_log_axis, save_figure
from analysis.frames import SWEEPS, by_setting_and_dataset, cell_words, frame, group_dir, read_sweep
from analysis.process import config_title
from cli import Parser, clean_exit, fail
from cli.options import add_options
from store.records import RECORD_FILE, TRACE_FILE

Description = Mapping[str, Any]  # an objective's self-description (`objectives.Objective.describe`)
COLOURS = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
PANEL_H = 1.8  # inches per row of panels; a row spans double-column width


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


def set_y_scale(ax, objective: Description, values: Mapping[str, np.ndarray]) -> None:
    """Log where the objective asks for it in every column drawn (``values`` per column) and
    they are positive; symlog where they span decades (`_symlog_threshold`); else linear."""
    if all(uses_log(objective, c, v) for c, v in values.items()):
        ax.set_yscale("log")
        label_log_axis(ax.yaxis)
    elif (scale := _symlog_threshold(np.concatenate([np.ravel(v) for v in values.values()]))) is not None:
        ax.set_yscale("symlog", linthresh=scale)


def _symlog_threshold(values: np.ndarray, span: float = 100.0) -> float | None:
    """A linear-region width for a symlog axis when values span over ``span`` x their typical
    size (e.g. an early spike of the projector loss), else None (linear axis)."""
    v = np.abs(values[np.isfinite(values)])
    typical = float(np.median(v)) if v.size else 0.0
    return typical if typical > 0 and float(v.max()) > span * typical else None


def _label(objective: Description, column: str) -> str:
    return _meta(objective, column).get("label", column)


def legend_below(ax, offset: float = 0.3) -> None:
    """The panel's legend ``offset`` axis heights under its axis, below its "generator step"
    label (diagnostic labels are longer than a panel is wide)."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -offset), fontsize=5.5, handlelength=1.2)


def _draw_panel(ax, trace: pd.DataFrame, objective: Description, columns: Sequence[str], window: int) -> None:
    steps = trace.index.to_numpy() + 1  # row t holds the diagnostics of generator step t + 1
    for i, col in enumerate(columns):
        raw = trace[col].to_numpy(dtype=np.float64)
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(steps, raw, color=colour, alpha=0.2, lw=0.5)
        ax.plot(steps, moving_average(raw, window), color=colour, lw=1.2, label=_label(objective, col))
    set_y_scale(ax, objective, {c: trace[c].to_numpy(dtype=np.float64) for c in columns})
    legend_below(ax)
    ax.grid(alpha=0.3)


def draw_traces(runs: Sequence[tuple[str, pd.DataFrame, Description]], window: int = 50,
                logx: bool = False) -> plt.Figure:
    """One row of panels per ``(title, trace, objective description)``; see the module docstring."""
    layouts = [panels_for(objective, list(trace.columns)) for _, trace, objective in runs]
    ncols = max(1, max(len(lay) for lay in layouts))
    fig, axs = plt.subplots(len(runs), ncols, figsize=(DOUBLE_COLUMN, PANEL_H * len(runs) + 0.3),
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
                label_log_axis(ax.xaxis)
            ax.set_xlabel("generator step")
        axs[row, 0].set_title(title, loc="left")
    return fig


def _stack(traces: Sequence[pd.DataFrame], column: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the seeds' moving averages of ``column`` as rows (NaN past a shorter trace)."""
    steps = sorted(set().union(*(t.index for t in traces if column in t)))
    rows = [moving_average(t[column].reindex(steps).to_numpy(dtype=np.float64), window) for t in traces if column in t]
    return np.asarray(steps) + 1, np.vstack(rows)


def draw_bands(groups: Sequence[tuple[str, Description, Sequence[pd.DataFrame]]], window: int,
               note: str = "") -> plt.Figure:
    """One panel per ``(title, objective description, traces of its seeds)``: the objective's
    pair of diagnostics, each the median over seeds of its moving average with a band over
    the seeds' range; up to four panels a row at double-column width."""
    per_row = min(4, len(groups))
    n_rows = -(-len(groups) // per_row)
    fig, axs = plt.subplots(n_rows, per_row, figsize=(DOUBLE_COLUMN if per_row > 1 else SINGLE_COLUMN,
                                                      2.1 * n_rows + 0.3), squeeze=False, constrained_layout=True)
    for ax, group in itertools.zip_longest(axs.flat, groups):
        if group is None:
            ax.set_axis_off()
            continue
        title, objective, runs = group
        columns = list(dict.fromkeys(c for t in runs for c in t.columns))
        pair = panels_for(objective, columns)[0] if columns else ()
        values = {}
        for i, col in enumerate(pair):
            steps, stack = _stack(runs, col, window)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps after a divergence
                mid, lo, hi = np.nanmedian(stack, 0), np.nanmin(stack, 0), np.nanmax(stack, 0)
            colour = COLOURS[i % len(COLOURS)]
            ax.fill_between(steps, lo, hi, color=colour, alpha=0.25, lw=0)
            ax.plot(steps, mid, color=colour, lw=0.9, label=_label(objective, col))
            values[col] = stack.ravel()
        if values:
            set_y_scale(ax, objective, values)
            legend_below(ax)
        ax.set_title(f"{title} ({len(runs)} seed{'s' if len(runs) != 1 else ''})")
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3, lw=0.4)
    if note:
        footer(fig, note)
    return fig


FOOTER_SIZE = 6  # points


def footer(fig: plt.Figure, text: str) -> None:
    """``text`` below everything, wrapped to the figure's width, in the space the layout
    leaves for it (a `supxlabel`: constrained layout makes room, so nothing is clipped and
    no axis label or legend is covered)."""
    chars = int(fig.get_figwidth() * 72 / (0.55 * FOOTER_SIZE))  # a 6-pt character is about 3.3 pt wide
    fig.supxlabel(textwrap.fill(text, chars), fontsize=FOOTER_SIZE, linespacing=1.1)
    fig.get_layout_engine().set(h_pad=FOOTER_SIZE / 72)  # a clear line between the legends and the footer


def draw_cell_traces(df: pd.DataFrame, out_dir: Path, formats: Sequence[str] | None = None,
                     cells: Sequence[str] | None = None) -> list[Path]:
    """``traces_<cell>`` for every grid cell of one setting's records (rows of
    `analysis.frames.frame`; only ``cells`` when given): every objective a panel, seeds a band."""
    written = []
    runs = df[[Path(p, TRACE_FILE).exists() for p in df["path"]]] if len(df) else df
    for cell, in_cell in runs.groupby("cell", sort=False):
        if cells and cell not in cells:
            continue
        groups, axes = [], {}
        for _, g in in_cell.groupby("entry", sort=False):
            record = store.read(g["path"].iloc[0], verify=False)
            axes = record.axes
            groups.append((g["label"].iloc[0], record.objective, [store.load_trace(p) for p in g["path"]]))
        steps = max(len(t) for _, _, ts in groups for t in ts)
        window = max(1, steps // 100)
        seeds = ", ".join(map(str, sorted(in_cell["seed"].unique())))
        note = (f"{cell_words(axes) or 'one cell'}; lines: median over seeds {seeds}, bands: their range; "
                + (f"moving average over {window} steps" if window > 1 else "no smoothing"))
        out_dir.mkdir(parents=True, exist_ok=True)
        written.append(save_figure(draw_bands(groups, window, note), out_dir / f"traces_{cell}", formats))
    return written


def run_title(record: store.Record) -> str:
    """Panel-row title: the run's config, directory name, and status when not ok."""
    flag = f" [{record.status}]" if record.status != "ok" else ""
    return f"{config_title(record.config, record.display_name)} — {record.path.name}{flag}"


def write_traces(runs: Sequence[tuple[str, pd.DataFrame, Description]], out: Path, window: int = 50,
                 logx: bool = False, formats: Sequence[str] | None = None) -> Path:
    """`draw_traces` saved to ``out``."""
    fig = draw_traces(runs, window, logx)
    return save_figure(fig, out, formats)


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
                logx: bool = False, formats: Sequence[str] | None = None) -> Path:
    """Draw the traces of ``records``; default output ``trace.png`` in the first one's directory."""
    runs = [(run_title(r), store.load_trace(r.path), r.objective) for r in records]
    return write_traces(runs, Path(out) if out else records[0].path / "trace.png", window, logx, formats)


def save_bands(root: Path, out: Path | None, cells: Sequence[str] | None, formats: Sequence[str],
               prog: str) -> list[Path]:
    """`draw_cell_traces` for every (setting, data set) of the sweep records below ``root``,
    into ``out/<setting>/<dataset>/traces`` or beside the records (``<dataset>/figures/traces``)."""
    written = []
    for runs in by_setting_and_dataset(read_sweep(root, SWEEPS, prog)):
        target = group_dir(runs, out) / ("traces" if out else "figures/traces")
        written += draw_cell_traces(frame(runs), target, formats, cells)
    return written


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m analysis.traces", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", type=Path, nargs="+",
                   help="record directories holding trace.csv, or one results directory (bands over seeds)")
    add_options(p, "smooth", "logx", "cell", "out", "format",
                shown={"out": "trace.png in the first record directory, or beside the records"},
                notes={"cell": "e.g. noise_dim=4_width=100",
                       "out": "the output file for record directories, the output folder for a results directory"})
    args = p.parse_args(argv)
    missing = [d for d in args.paths if not d.exists()]
    if missing:
        fail(p.prog, f"{missing[0]} does not exist")
    with clean_exit(p.prog):
        if all((d / RECORD_FILE).exists() for d in args.paths):
            records = read_records(args.paths, p.prog)
            try:
                check_output_file(args.out or records[0].path / "trace.png")
            except PermissionError as err:
                fail(p.prog, str(err))
            print(save_traces(records, args.out, args.smooth, args.logx, args.format))
            return 0
        if len(args.paths) > 1:
            fail(p.prog, "give record directories, or one results directory")
        written = save_bands(args.paths[0], args.out, args.cell, args.format, p.prog)
    if not written:
        fail(p.prog, f"no traces below {args.paths[0]}" + (f" in cell(s) {', '.join(args.cell)}" if args.cell else ""))
    print("\n".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
