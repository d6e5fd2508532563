"""The one sweep skeleton: options, planning, resuming, parallel training and the report,
shared by the stability sweep (`sweeps.stability`) and the image sweep (`sweeps.fid`).

A sweep is the product of objectives (``--models``), data sets (``--dataset``), grid axes and
seeds. Axes are the fields a sweep always sweeps (the stability sweep's noise dimension x
width, the image sweep's architecture), any of ``--arch``/``--noise-dims``/``--widths`` given
more than one value, and every ``--grid KEY=V1,V2`` (a run field or a hyperparameter; with
``--grid`` the always-swept fields default to one value, `engine.RunConfig`'s). Each
(objective, data set, grid point, seed) is one cell with a complete `engine.RunConfig`,
recorded at a path made from that configuration (`store.sweep_dir`). A rerun skips exactly
the cells whose finished record of the same configuration exists, so a killed sweep resumes
where it stopped and a changed setting trains anew; ``--force`` retrains.

Cells that can share a batched model are cut into stacks by the grid and ``--max-stack``
alone (`sweeps.worker.stack_tasks`), so a cell's numbers do not depend on ``--jobs`` or on
interruptions: a resumed stack with an unfinished member trains whole again, as in an
uninterrupted sweep, from the stack's last checkpoint if a killed run left one
(`sweeps.longrun`), and only its unfinished members' records are written. Every bad input
is refused (exit 2, one line) before anything is written; Ctrl-C and SIGTERM stop the
workers and end with one line (`cli.clean_exit`).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import data
import store
from cli import (Parser, UsageError, add_models_arg, add_out_arg, add_plugin_arg, clean_exit, fail, load_plugins,
                 parse_int_list, parse_models, parse_names, parse_overrides, parse_value)
from engine import MAX_STACK, RunConfig, field_default
from sweeps.longrun import LongRun, add_long_run_args, long_run_from_args
from sweeps.parallel import Placement, add_placement_args, crash_exit_code, placement_from_args, run_with_progress
from sweeps.worker import Cell, Evaluator, evaluate_samples, record_lost, run_task, stack_tasks

RUN_FIELDS = {f.name for f in fields(RunConfig)} - {"model", "dataset", "seed", "hp", "device"}
LIST_OPTIONS = {"noise_dim": "noise_dims", "width": "widths", "arch": "arch"}  # axis field -> option


@dataclass(frozen=True)
class Plan:
    """A validated command line: the cells, where they run, and the plugins workers load."""

    cells: list[Cell]
    placement: Placement
    plugins: tuple[str, ...]
    long: LongRun


class Sweep:
    """One sweep command. Subclasses set the class attributes and may extend the hooks."""

    name: str  # command and records subdirectory
    unit: str = "cell"
    doc: str = ""
    kinds: tuple[str, ...] = ("toy",)  # data kinds it trains on
    presets: Mapping[str, Mapping[str, Any]]  # per preset: steps, batch, n_samples, noise_dims, widths
    axes: tuple[str, ...]  # fields always swept, in figure order
    defaults: Mapping[str, Any]  # option defaults: models, dataset, arch, seeds, noise, max_stack
    stacks_on_gpu: bool = True  # on GPUs, train whole grids as one stack (small networks)
    epilog: str = ""

    # --- hooks -------------------------------------------------------------------------

    def add_options(self, parser: Parser) -> None:
        """Options of this sweep only."""

    def prepare(self, args: argparse.Namespace, datasets: list[str], todo: Sequence[Cell]) -> dict[str, Evaluator]:
        """Check the data sets (``UsageError``) and return how each one's runs are scored."""
        return {d: evaluate_samples for d in datasets}

    @staticmethod
    def reporter(root: Path) -> str | None:
        """Tables and figures of the records below ``root``; markdown to print (an
        `analysis` command's ``report``)."""
        raise NotImplementedError

    def summary(self, metrics: dict[str, Any]) -> str:
        """A few metrics for a finished cell's progress line."""
        raise NotImplementedError

    # --- the skeleton ------------------------------------------------------------------

    def build_parser(self) -> Parser:
        d = self.defaults
        p = Parser(prog=f"python -m sweeps.{self.name}", description=self.doc, epilog=self.epilog,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
        add_models_arg(p, d["models"])
        p.add_argument("--dataset", "--datasets", dest="dataset", default=d["dataset"],
                       help=f"data set(s), a comma list: {', '.join(self.dataset_names())} (default {d['dataset']})")
        p.add_argument("--preset", choices=list(self.presets), default="full",
                       help="run length and grid: " + "; ".join(f"{k}: {v['about']}" for k, v in self.presets.items()))
        p.add_argument("--arch", default=d["arch"], help=f"architecture(s), a comma list (default {d['arch']})")
        p.add_argument("--noise-dims", help="comma list of noise dimensions (default: the preset's)")
        p.add_argument("--widths", help="comma list of generator widths (default: the preset's)")
        p.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                       help="sweep any run field or hyperparameter too, e.g. df=2,4,8,16 (repeatable)")
        p.add_argument("--seeds", default=d["seeds"], help=f"comma list of seeds per cell (default {d['seeds']})")
        p.add_argument("--steps", type=int, help="generator steps per run (default: the preset's)")
        p.add_argument("--batch", type=int, help="batch size, real and generated (default: the preset's)")
        p.add_argument("--samples", type=int, help="samples drawn and scored per run (default: the preset's)")
        p.add_argument("--noise", choices=["normal", "uniform"], default=d["noise"],
                       help=f"noise distribution (default {d['noise']})")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a hyperparameter of every objective that has it, e.g. lr=5e-4 "
                            "(checked against its default's type and range)")
        add_placement_args(p, f"{self.unit}s")
        p.add_argument("--max-stack", type=int,
                       help=f"most {self.unit}s trained as one batched model (default {d['max_stack']} on CPU; on "
                            "GPUs a whole grid of one objective and data set, widths padded: see README). Part of "
                            "the experiment: a stacked run agrees with the same run alone only up to float "
                            "rounding, so keep it fixed to reproduce numbers bit for bit (--jobs never changes "
                            "them); each record names its stack")
        add_out_arg(p, Path("results"), "results root")
        p.add_argument("--force", action="store_true", help=f"retrain {self.unit}s that already have a record")
        p.add_argument("--no-figures", action="store_true", help="skip the tables and figures at the end")
        add_plugin_arg(p)
        add_long_run_args(p)
        self.add_options(p)
        return p

    def dataset_names(self) -> list[str]:
        return [n for n in data.names() if not n.endswith(":") and data.get(n).kind in self.kinds]

    def parse_axes(self, args: argparse.Namespace, preset: Mapping[str, Any]
                   ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """The axes (name -> values: the always-swept fields, list options with several
        values, every --grid) and the fixed values of the list options that are not axes."""
        defaults = {"noise_dim": preset["noise_dims"], "width": preset["widths"]}
        if args.grid:  # a --grid study keeps the always-swept fields at one value unless asked
            defaults.update({k: [field_default(k)] for k in defaults if k in self.axes})
        values = {
            "noise_dim": (parse_int_list(args.noise_dims, "--noise-dims") if args.noise_dims is not None
                          else defaults["noise_dim"]),
            "width": parse_int_list(args.widths, "--widths") if args.widths is not None else defaults["width"],
            "arch": parse_names(args.arch, "--arch"),
        }
        axes = {k: list(dict.fromkeys(v)) for k, v in values.items() if k in self.axes or len(set(v)) > 1}
        axes = {k: axes[k] for k in sorted(axes, key=lambda k: (k not in self.axes, list(LIST_OPTIONS).index(k)))}
        fixed = {k: v[0] for k, v in values.items() if k not in axes}
        for item in args.grid or []:
            key, sep, text = item.partition("=")
            key = key.strip()
            parsed = list(dict.fromkeys(parse_value(v.strip()) for v in text.split(",") if v.strip()))
            if not sep or not key or not parsed:
                raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r}")
            if key in LIST_OPTIONS:
                raise UsageError(f"use --{LIST_OPTIONS[key].replace('_', '-')} to sweep {key}, not --grid")
            if key in ("model", "dataset", "seed"):
                raise UsageError(f"use --{'models' if key == 'model' else key + 's'} to sweep {key}s, not --grid")
            axes[key] = parsed
        return axes, fixed

    def plan(self, args: argparse.Namespace) -> Plan:
        """Validate the command line into cells; bad input raises `UsageError` before any work."""
        plugins = load_plugins(args.plugin)
        models = parse_models(args.models)
        datasets = parse_names(args.dataset, "--dataset")
        for name in datasets:
            if not data.known(name):
                raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(self.dataset_names())}")
            if data.get(name).kind not in self.kinds:
                raise UsageError(f"{name} is {data.get(name).kind} data; python -m sweeps.{self.name} trains on "
                                 f"{' or '.join(self.kinds)} data")
        preset = self.presets[args.preset]
        axes, fixed = self.parse_axes(args, preset)
        seeds = list(dict.fromkeys(parse_int_list(args.seeds, "--seeds", minimum=0)))
        placement = placement_from_args(args)
        if args.max_stack is None:  # CPU: stacks of one width; GPU: whole grids (launch-bound, memory to spare)
            args.max_stack = MAX_STACK if placement.on_gpu and self.stacks_on_gpu else self.defaults["max_stack"]
        if not 1 <= args.max_stack <= MAX_STACK:
            raise UsageError(f"--max-stack must be in 1..{MAX_STACK}")
        long = long_run_from_args(args)
        overrides = parse_overrides(args.set)
        base = {"steps": args.steps if args.steps is not None else preset["steps"],
                "batch": args.batch if args.batch is not None else preset["batch"],
                "n_samples": args.samples if args.samples is not None else preset["n_samples"],
                "noise": args.noise, "device": "cuda" if placement.on_gpu else "cpu", **fixed}
        cells = []
        try:
            for dataset, model, point in itertools.product(datasets, models, itertools.product(*axes.values())):
                point = dict(zip(axes, point))
                run = {k: v for k, v in point.items() if k in RUN_FIELDS}
                hp = {**overrides, **{k: v for k, v in point.items() if k not in RUN_FIELDS}}
                for seed in seeds:
                    cfg = RunConfig(model=model, dataset=dataset, seed=seed, **base, **run, hp=tuple(hp.items()))
                    cells.append(Cell(cfg, tuple(point.items()),
                                      store.sweep_dir(args.out, self.name, cfg.to_dict(), point)))
        except (ValueError, TypeError) as err:
            raise UsageError(str(err)) from None
        store.ensure_writable(args.out)
        store.check_names(max((c.path for c in cells), key=lambda p: max(map(len, p.parts))))
        return Plan(cells, placement, plugins, long)

    def main(self, argv: list[str] | None = None) -> int:
        parser = self.build_parser()
        args = parser.parse_args(argv)
        with clean_exit(parser.prog, "; finished records are kept: rerun the same command to resume"):
            return self.run(parser, args)

    def run(self, parser: Parser, args: argparse.Namespace) -> int:
        """Plan (every check before any work), train what is not finished, report."""
        try:
            plan = self.plan(args)
            root = args.out / self.name
            store.clean_partial(root)
            pending = []
            for cell in plan.cells:
                state = store.state(cell.path, cell.config.key())
                if state.startswith("damaged"):
                    print(f"{cell.path.relative_to(root)}: {state}; training it again", file=sys.stderr)
                if args.force or state != "finished":
                    pending.append(cell)
            evaluators = self.prepare(args, list(dict.fromkeys(c.config.dataset for c in plan.cells)), pending)
        except (UsageError, PermissionError) as err:
            fail(parser.prog, str(err))
        tasks = stack_tasks(self.name, plan.cells, pending, evaluators.__getitem__, plan.plugins, args.max_stack,
                            mixed_widths=plan.placement.on_gpu, long=plan.long)
        plan = replace(plan, placement=plan.placement.fitted(len(tasks)))
        print(f"{len(plan.cells)} {self.unit}s ({len(plan.cells) - len(pending)} already finished), {len(tasks)} "
              f"stack(s) to train, {min(plan.placement.workers, len(tasks))} worker(s) on "
              f"{','.join(plan.placement.devices)}", file=sys.stderr)
        along = sum(len(t.cells) - len(t.pending) for t in tasks)
        if along:
            print(f"{along} finished {self.unit}(s) train again with the unfinished {self.unit}s of their stack, "
                  "so every run computes what it computes in an uninterrupted sweep; their records are kept",
                  file=sys.stderr)
        t0 = time.perf_counter()
        results = run_with_progress(run_task, tasks, plan.placement, len(pending), self.unit, root, self.summary,
                                    record_lost)
        if pending:
            rss = [r["rss"] for r in results if r["rss"] is not None]
            print(f"trained {len(pending)} {self.unit}s in {time.perf_counter() - t0:.0f} s"
                  + (f"; peak worker memory {max(rss):.0f} MB" if rss else ""), file=sys.stderr)
        if not args.no_figures:
            settings = dict.fromkeys(store.setting_dir(args.out, self.name, c.config.to_dict(), dict(c.axes))
                                     for c in plan.cells)
            print("\n\n".join(self.reporter(d) or f"no records in {d}" for d in settings))
        return crash_exit_code(results, self.unit)
