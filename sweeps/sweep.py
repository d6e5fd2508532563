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
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import Parser, UsageError, clean_exit, fail
from cli.options import add_options

if TYPE_CHECKING:
    from sweeps.longrun import LongRun
    from sweeps.parallel import Placement
    from sweeps.worker import Cell, Evaluator

LIST_FIELDS = ("noise_dim", "width", "arch")  # run fields with a list option, in figure order


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
    presets: Mapping[str, Mapping[str, Any]]  # per preset: about, steps, batch, n_samples, noise_dims, widths
    axes: tuple[str, ...]  # fields always swept, in figure order
    defaults: Mapping[str, Any]  # option defaults: models, dataset, seeds, max_stack; arch, noise (None: RunConfig's)
    options: tuple[str, ...] = ()  # options of this sweep only (names in `cli.options.OPTIONS`)
    stacks_on_gpu: bool = True  # on GPUs, train whole grids as one stack (small networks)
    epilog: str = ""

    # --- hooks -------------------------------------------------------------------------

    def prepare(self, args: argparse.Namespace, datasets: list[str], todo: Sequence[Cell]) -> dict[str, Evaluator]:
        """Check the data sets (``UsageError``) and return how each one's runs are scored."""
        from sweeps.worker import evaluate_samples
        return {d: evaluate_samples for d in datasets}

    def reporter(self, root: Path) -> str | None:
        """Tables and figures of the records below ``root``; markdown to print (an
        `analysis` command's ``report``)."""
        raise NotImplementedError

    # --- the skeleton ------------------------------------------------------------------

    def build_parser(self) -> Parser:
        d = self.defaults
        p = Parser(prog=f"python -m sweeps.{self.name}", description=self.doc, epilog=self.epilog,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
        add_options(p, "models", "dataset", "preset", "arch", "noise_dims", "widths", "grid", "seeds", "steps", "batch",
                    "samples", "noise", "ema", "set", "max_stack", "out", "force", "no_figures", "plugin", "jobs", "threads",
                    "devices", "jobs_per_device", "backend", "scheduler", "slurm_time", "slurm_gpus", "slurm_partition",
                    "slurm_logs", "stacks_per_job", "slurm_cluster", "checkpoint_minutes", "checkpoint_steps",
                    "eval_every", "eval_samples", "tensorboard", "log_every", "images_every", *self.options,
                    defaults={"models": d["models"], "dataset": d["dataset"], "arch": d.get("arch"),
                              "seeds": d["seeds"], "noise": d.get("noise"), "out": Path("results"),
                              "cache_dir": None},
                    shown={**dict.fromkeys(("noise_dims", "widths", "steps", "batch", "samples"), "the preset's"),
                           "max_stack": f"{d['max_stack']} on CPU; on GPUs a whole grid of one objective and data set, "
                                        "widths padded: see README",
                           "cache_dir": f"<out>/{self.name}/cache"},
                    choices={"preset": {k: v["about"] for k, v in self.presets.items()}},
                    notes={"out": "the results root", "force": f"retrain {self.unit}s that already have a record"})
        return p

    def dataset_names(self) -> list[str]:
        import data
        return [n for n in data.names() if not n.endswith(":") and data.get(n).kind in self.kinds]

    def parse_axes(self, args: argparse.Namespace, preset: Mapping[str, Any]
                   ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """The axes (name -> values: the always-swept fields, list options with several
        values, every --grid) and the fixed values of the list options that are not axes."""
        from engine import field_default
        defaults = {"noise_dim": list(preset["noise_dims"]), "width": list(preset["widths"]),
                    "arch": [field_default("arch")]}
        if args.grid:  # a --grid study keeps the always-swept fields at one value unless asked
            defaults.update({k: [field_default(k)] for k in defaults if k in self.axes})
        given = {"noise_dim": args.noise_dims, "width": args.widths, "arch": args.arch}
        values = {k: given[k] if given[k] is not None else defaults[k] for k in LIST_FIELDS}
        axes = {k: list(dict.fromkeys(v)) for k, v in values.items() if k in self.axes or len(set(v)) > 1}
        axes = {k: axes[k] for k in sorted(axes, key=lambda k: (k not in self.axes, LIST_FIELDS.index(k)))}
        fixed = {k: v[0] for k, v in values.items() if k not in axes}
        axes.update(args.grid)
        return axes, fixed

    def plan(self, args: argparse.Namespace) -> Plan:
        """Validate the command line into cells; bad input raises `UsageError` before any work."""
        import data
        import store
        from engine import MAX_STACK, RunConfig
        from sweeps.longrun import long_run_from_args
        from sweeps.parallel import placement_from_args
        from sweeps.worker import Cell
        for name in args.dataset:
            if not data.known(name):
                raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(self.dataset_names())}")
            if data.get(name).kind not in self.kinds:
                raise UsageError(f"{name} is {data.get(name).kind} data; python -m sweeps.{self.name} trains on "
                                 f"{' or '.join(self.kinds)} data")
        preset = self.presets[args.preset]
        axes, fixed = self.parse_axes(args, preset)
        placement = placement_from_args(args)
        if args.max_stack is None:  # CPU: stacks of one width; GPU: whole grids (launch-bound, memory to spare)
            args.max_stack = MAX_STACK if placement.on_gpu and self.stacks_on_gpu else self.defaults["max_stack"]
        if not 1 <= args.max_stack <= MAX_STACK:
            raise UsageError(f"--max-stack must be in 1..{MAX_STACK}")
        run_fields = set(RunConfig.__dataclass_fields__) - {"model", "dataset", "seed", "hp", "device"}
        base = {"steps": args.steps if args.steps is not None else preset["steps"],
                "batch": args.batch if args.batch is not None else preset["batch"],
                "n_samples": args.samples if args.samples is not None else preset["n_samples"],
                **({"noise": args.noise} if args.noise is not None else {}), "ema": args.ema,
                "device": "cuda" if placement.on_gpu else "cpu", **fixed}
        cells = []
        try:
            for dataset, model, point in itertools.product(args.dataset, args.models,
                                                           itertools.product(*axes.values())):
                point = dict(zip(axes, point))
                run = {k: v for k, v in point.items() if k in run_fields}
                hp = {**dict(args.set), **{k: v for k, v in point.items() if k not in run_fields}}
                for seed in dict.fromkeys(args.seeds):
                    cfg = RunConfig(model=model, dataset=dataset, seed=seed, **base, **run, hp=tuple(hp.items()))
                    cells.append(Cell(cfg, tuple(point.items()),
                                      store.sweep_dir(args.out, self.name, cfg.to_dict(), point)))
        except (ValueError, TypeError) as err:
            raise UsageError(str(err)) from None
        store.ensure_writable(args.out)
        store.check_names(max((c.path for c in cells), key=lambda p: max(map(len, p.parts))))
        return Plan(cells, placement, args.plugin, long_run_from_args(args))

    def main(self, argv: list[str] | None = None) -> int:
        parser = self.build_parser()
        return self.start(parser, parser.parse_args(argv))

    def start(self, parser: Parser, args: argparse.Namespace) -> int:
        """`run` the parsed command line, ending in one line when stopped."""
        with clean_exit(parser.prog, "; finished records are kept: rerun the same command to resume"):
            return self.run(parser, args)

    def run(self, parser: Parser, args: argparse.Namespace) -> int:
        """Plan (every check before any work), train what is not finished, report; one sweep
        at a time writes into an output root (`sweeps.lock`)."""
        with ExitStack() as held:
            return self._run(parser, args, held)

    def _run(self, parser: Parser, args: argparse.Namespace, held: ExitStack) -> int:
        import store
        from sweeps.lock import output_lock
        from sweeps.parallel import crash_exit_code, run_with_progress
        from sweeps.worker import record_lost, run_task, stack_tasks
        try:
            plan = self.plan(args)
            held.enter_context(output_lock(args.out))
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
        results = run_with_progress(run_task, tasks, plan.placement, len(pending), self.unit, root, record_lost,
                                    steps=lambda task: task.steps)
        if pending:
            rss = [r["rss"] for r in results if r["rss"] is not None]
            print(f"trained {len(pending)} {self.unit}s in {time.perf_counter() - t0:.0f} s"
                  + (f"; peak worker memory {max(rss):.0f} MB" if rss else ""), file=sys.stderr)
        if not args.no_figures:
            settings = dict.fromkeys(store.setting_dir(args.out, self.name, c.config.to_dict(), dict(c.axes))
                                     for c in plan.cells)
            print("\n\n".join(self.reporter(d) or f"no records in {d}" for d in settings))
        return crash_exit_code(results, self.unit)
