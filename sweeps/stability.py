"""Stability sweep: train every cell of a grid (noise dimension x generator width by default).

    python -m sweeps.stability --model gram --jobs 2
    python -m sweeps.stability --model gan,mmdnet,mmdgan,gram --dataset ring2d,ring3d --jobs 2
    python -m sweeps.stability --model all --dataset ring3d --seeds 0,1,2
    python -m sweeps.stability --model gram,mmdgan --dataset ring3d --grid df=2,4,8,16

Each (cell, seed) is written atomically to
``<out>/stability/<dataset>/<model>/<cell>/seed<k>/`` (see `sweeps.records`). Rerunning the
same command skips finished cells, so a killed sweep resumes where it stopped; ``--force``
recomputes. Cells whose training diverges are recorded as ``diverged`` with the reason;
a crash inside a cell is recorded as ``crashed`` (retried on the next run) and makes the
exit code 1. At the end, figures and tables are drawn by `analysis.stability`.

Cells of one objective that differ only in seed and noise dimension are trained together
as one batched model (``--max-stack``), which is exact (see `models.stacked`).
"""
from __future__ import annotations

import itertools
import math
import resource
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import data
import objectives
from models import ArchConfig
from sweeps.cli import (Parser, UsageError, add_plugin_arg, fail, load_plugins,
                        parse_int_list, parse_names, parse_overrides, parse_value)
from sweeps.parallel import (Placement, add_placement_args, crash_exit_code, placement_from_args,
                             run_with_progress)
from sweeps.records import clean_partial, ensure_writable, is_finished, provenance, write_record
from sweeps.runner import RunConfig, Trainer

PAPER_STEPS = 10_500  # 35 epochs of 60,000 points at batch 200
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"steps": PAPER_STEPS, "noise_dims": [2, 4, 8, 16], "widths": [20, 100, 200], "samples": 10_000},
    "smoke": {"steps": 40, "noise_dims": [2, 8], "widths": [20, 100], "samples": 10_000, "batch": 64},
}
RUN_FIELDS = {f.name for f in fields(RunConfig)} - {"model", "dataset", "seed", "hp"}


@dataclass(frozen=True)
class Cell:
    """One grid cell of one objective on one seed, and where its record lives."""

    config: RunConfig
    path: Path
    label: str


def cell_label(axes: dict[str, Any]) -> str:
    """``{"noise_dim": 4, "width": 100}`` -> ``"noise_dim=4_width=100"`` (a directory name)."""
    def fmt(v: Any) -> str:
        return "-".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return "_".join(f"{k}={fmt(v)}" for k, v in axes.items()) or "default"


def build_cells(models: Sequence[str], dataset: str, seeds: Sequence[int], axes: dict[str, list[Any]],
                base: RunConfig, root: Path) -> list[Cell]:
    """Every (model, grid point, seed); an axis is a `RunConfig` field or a hyperparameter."""
    cells = []
    for model in models:
        for values in itertools.product(*axes.values()):
            point = dict(zip(axes, values))
            run_kw = {k: v for k, v in point.items() if k in RUN_FIELDS}
            hp = {**dict(base.hp), **{k: v for k, v in point.items() if k not in RUN_FIELDS}}
            label = cell_label(point)
            for seed in seeds:
                cfg = replace(base, model=model, dataset=dataset, seed=seed, hp=tuple(hp.items()), **run_kw)
                cells.append(Cell(cfg, root / "stability" / dataset / model / label / f"seed{seed}", label))
    return cells


def make_stacks(cells: Sequence[Cell], workers: int, max_stack: int) -> list[list[Cell]]:
    """Group stackable cells, splitting groups so there are enough tasks to keep workers busy.

    The largest stack size (<= max_stack) that still yields >= 2 tasks per worker (or one
    task per cell, if fewer) is used; tasks are ordered most expensive first.
    """
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.config.stack_key(), []).append(c)
    want = min(len(cells), 2 * workers)
    size = max(1, max_stack)
    while size > 1 and sum(math.ceil(len(g) / size) for g in groups.values()) < want:
        size -= 1
    stacks = [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]

    def cost(stack: list[Cell]) -> float:
        """Rough relative wall time: every generator step makes 1 + n_critic passes through
        a critic (fixed width) and the generator. Longest first keeps the tail short: a
        5-critic-step MMD-GAN stack of width 20 still outlasts any single-critic stack."""
        c = stack[0].config
        hp = objectives.hyperparameters(c.model, data.get(c.dataset).kind, dict(c.hp))
        return len(stack) * c.steps * (1 + hp.get("n_critic", 1)) * (ArchConfig.critic_width ** 2 + c.width ** 2 / 4)
    return sorted(stacks, key=cost, reverse=True)


def train_stack(stack: list[Cell], device: str) -> list[dict[str, Any]]:
    """Worker: train one stack and write each cell's record; a crash is recorded, not raised."""
    from sweeps.evaluate import save_outcome
    t0 = time.perf_counter()
    try:
        trainer = Trainer([c.config for c in stack], device)
        trainer.train()
        results = []
        outcomes = trainer.outcomes()
        rss = peak_rss_mb()
        for cell, outcome in zip(stack, outcomes):
            record = save_outcome(outcome, cell.path, {"cell": cell.label, "peak_rss_mb": rss})
            results.append({"path": str(cell.path), "status": record["status"], "reason": record["reason"],
                            "metrics": record["metrics"], "wall": time.perf_counter() - t0, "rss": rss})
        return results
    except Exception as err:  # noqa: BLE001 - every crash is recorded and reported by the parent
        return record_crash(stack, device, err, t0)


def record_crash(cells: Sequence[Cell], device: str, err: Exception, t0: float) -> list[dict[str, Any]]:
    """Write a ``crashed`` record (reason and traceback) for each cell of a failed task and
    return the parent's result rows; crashed records are retried by the next run."""
    reason = f"{type(err).__name__}: {err}"
    tb = traceback.format_exc()
    for cell in cells:
        write_record(cell.path, {"config": cell.config.to_dict(), "seed": cell.config.seed,
                                 "cell": cell.label, "status": "crashed", "reason": reason,
                                 "traceback": tb, "device": device, "provenance": provenance()})
    return [{"path": str(c.path), "status": "crashed", "reason": reason, "metrics": {},
             "wall": time.perf_counter() - t0, "rss": peak_rss_mb()} for c in cells]


def peak_rss_mb() -> float:
    """Peak resident memory of this (worker) process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.stability", description=__doc__.split("\n\n")[0],
               epilog="Defaults reproduce the paper: ring2d, noise dims 2,4,8,16 x widths 20,100,200, "
                      "10,500 generator steps at batch 200, the authors' hyperparameters per objective.")
    p.add_argument("--model", default="gram",
                   help="objective(s): one name, a comma list, or 'all' (default gram)")
    p.add_argument("--dataset", default="ring2d",
                   help="ring2d (default), ring3d, grid, or a comma list (one pool of work, so "
                        "all workers stay busy to the end)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                   help="paper (default: full length) or smoke (a few seconds, for tests and demos)")
    p.add_argument("--noise-dims", help="comma list of noise dimensions (grid columns)")
    p.add_argument("--widths", help="comma list of generator hidden widths (grid rows)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="sweep any run field or hyperparameter, e.g. df=2,4,8,16 (repeatable); "
                        "given without --noise-dims/--widths, those stay at single values (4, 100)")
    p.add_argument("--seeds", default="0", help="comma list of seeds per cell (default 0)")
    p.add_argument("--steps", type=int, help="generator steps per cell (default: the preset's)")
    p.add_argument("--batch", type=int, help="batch size (default 200; smoke 64)")
    p.add_argument("--samples", type=int, help="samples stored per cell (default 10000)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter in every cell")
    add_placement_args(p, "cells")
    p.add_argument("--max-stack", type=int, default=16, help="most cells trained as one batched model (default 16)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root (default results/)")
    p.add_argument("--force", action="store_true", help="recompute cells that already have a record")
    p.add_argument("--no-figures", action="store_true", help="skip drawing figures and tables at the end")
    add_plugin_arg(p)
    return p


def parse_models(text: str) -> list[str]:
    known = objectives.names()
    models = known if text == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise UsageError(f"unknown model {', '.join(unknown) or repr(text)}; choose from {', '.join(known)} or all")
    return models


def parse_axes(args, preset: dict[str, Any]) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    extra = {}
    for item in args.grid or []:
        key, sep, values = item.partition("=")
        parsed = [parse_value(v) for v in values.split(",") if v.strip()]
        if not sep or not key or not parsed:
            raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        extra[key.strip()] = parsed
    default_nz, default_w = ([4], [100]) if extra else (preset["noise_dims"], preset["widths"])
    axes["noise_dim"] = parse_int_list(args.noise_dims, "--noise-dims") if args.noise_dims else default_nz
    axes["width"] = parse_int_list(args.widths, "--widths") if args.widths else default_w
    axes.update(extra)
    return axes


def plan(args) -> tuple[list[Cell], Placement]:
    """Validate the command line into cells and a placement; bad input raises `UsageError`."""
    load_plugins(args.plugin)
    models = parse_models(args.model)
    datasets = parse_datasets(args.dataset)
    preset = PRESETS[args.preset]
    axes = parse_axes(args, preset)
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if args.max_stack < 1:
        raise UsageError("--max-stack must be at least 1")
    placement = placement_from_args(args)
    try:
        base = RunConfig(steps=args.steps or preset["steps"], batch=args.batch or preset.get("batch", 200),
                         n_samples=args.samples or preset["samples"],
                         hp=tuple(parse_overrides(args.set).items()))
        cells = [c for d in datasets for c in build_cells(models, d, seeds, axes, base, args.out)]
        for c in cells:
            objectives.hyperparameters(c.config.model, data.get(c.config.dataset).kind, dict(c.config.hp))
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    ensure_writable(args.out)
    return cells, placement


def parse_datasets(text: str) -> list[str]:
    """``"ring2d,ring3d"`` -> the known data set names, in order, without repeats."""
    names = parse_names(text, "--dataset")
    unknown = [n for n in names if not data.known(n)]
    if unknown:
        raise UsageError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(data.names())}")
    return names


def ring_summary(m: dict[str, Any]) -> str:
    return f"{m['modes_covered']}/{m['n_modes']} modes, hq {m['hq_fraction']:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cells, placement = plan(args)
    except (UsageError, PermissionError) as err:
        fail(parser.prog, str(err))

    clean_partial(args.out / "stability")
    todo = [c for c in cells if args.force or not is_finished(c.path)]
    print(f"{len(cells)} cells ({len(cells) - len(todo)} already finished), "
          f"{placement.workers} worker(s) on {','.join(placement.devices)}", file=sys.stderr)
    stacks = make_stacks(todo, placement.workers, args.max_stack)
    t0 = time.perf_counter()
    results = run_with_progress(train_stack, stacks, placement, len(todo), "cell",
                                args.out / "stability", ring_summary)
    if todo:
        print(f"trained {len(todo)} cells in {time.perf_counter() - t0:.0f} s; peak worker memory "
              f"{max(r['rss'] for r in results):.0f} MB", file=sys.stderr)

    if not args.no_figures:
        from analysis.stability import report
        for dataset in dict.fromkeys(c.config.dataset for c in cells):
            print(report(args.out / "stability" / dataset, models=list(dict.fromkeys(c.config.model for c in cells))))
    return crash_exit_code(results, "cell")


if __name__ == "__main__":
    sys.exit(main())
