"""The one sweep skeleton: options, planning, resuming, parallel training and the report,
shared by the stability sweep (`sweeps.stability`) and the image sweep (`sweeps.fid`).

What a sweep runs is an experiment: the preset's experiment file (``--preset``, default
``full``: ``experiments/<command>-<preset>.toml``), an experiment file of the user's over it
(``--config``) and the options given on the command line over both; a file's values are
parsed and checked like the command line's (`cli.options.apply_config`), and the resolved
experiment is saved beside the records (`core.experiments.save_resolved`).

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
import re
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import Parser, UsageError, clean_exit, fail
from cli.options import OPTIONS, PLACEMENT, add_options, apply_config, given_options
from core import experiments

if TYPE_CHECKING:
    from sweeps.longrun import LongRun
    from sweeps.parallel import Placement
    from sweeps.worker import Cell, Evaluator

LIST_FIELDS = {"noise_dim": "noise_dims", "width": "widths", "arch": "arch"}  # run field -> its list option
NOT_EXPERIMENT = ("config", "preset", "out", "force", "no_figures", "cache_dir", "data_root", "download",
                  "checkpoint_minutes", "checkpoint_steps")  # with the PLACEMENT options: how, not what, a sweep runs


def experiment_option(name: str) -> bool:
    """Whether option ``name`` says what a sweep runs (not where or how: placement, output, resuming)."""
    return name in OPTIONS and name not in NOT_EXPERIMENT and OPTIONS[name].group != PLACEMENT


@dataclass(frozen=True)
class Plan:
    """A validated command line: the cells, where they run, and the plugins workers load."""

    cells: list[Cell]
    placement: Placement
    plugins: tuple[str, ...]
    long: LongRun


class SweepParser(Parser):
    """A sweep's parser: it reads a command line over its experiment files (`Sweep.parse_args`)."""

    def __init__(self, sweep: Sweep, **kwargs: Any):
        super().__init__(**kwargs)
        self.sweep = sweep

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: Any = None) -> argparse.Namespace:
        if namespace is not None:  # the experiment's values, from `Sweep.parse_args`
            return super().parse_args(args, namespace)
        return self.sweep.parse_args(self, args)


class Sweep:
    """One sweep command. Subclasses set the class attributes and may extend the hooks."""

    name: str  # command and records subdirectory
    unit: str = "cell"
    doc: str = ""
    kinds: tuple[str, ...] = ("toy",)  # data kinds it trains on
    axes: tuple[str, ...]  # fields always swept, in figure order
    defaults: Mapping[str, Any]  # option defaults: models, dataset, seeds, max_stack; arch, noise (None: RunConfig's)
    options: tuple[str, ...] = ()  # options of this sweep only (names in `cli.options.OPTIONS`)
    stacks_on_gpu: bool = True  # on GPUs, train whole grids as one stack (small networks)
    epilog: str = ""

    @property
    def presets(self) -> dict[str, experiments.Experiment]:
        """This command's presets: the shipped experiment files ``<name>-<preset>.toml``."""
        return experiments.presets(self.name)

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

    def build_parser(self) -> SweepParser:
        d = self.defaults
        p = SweepParser(self, prog=f"python -m sweeps.{self.name}", description=self.doc, epilog=self.epilog,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
        add_options(p, "config", "preset", "models", "dataset", "arch", "noise_dims", "widths", "grid", "seeds",
                    "steps", "batch", "samples", "noise", "ema", "set", "max_stack", "out", "force", "no_figures",
                    "plugin", "jobs", "threads",
                    "devices", "jobs_per_device", "backend", "scheduler", "slurm_time", "slurm_gpus", "slurm_partition",
                    "slurm_logs", "stacks_per_job", "slurm_cluster", "checkpoint_minutes", "checkpoint_steps",
                    "eval_every", "eval_samples", "tensorboard", "log_every", "images_every", *self.options,
                    defaults={"models": d["models"], "dataset": d["dataset"], "arch": d.get("arch"),
                              "seeds": d["seeds"], "noise": d.get("noise"), "out": Path("results"),
                              "cache_dir": None},
                    shown={**dict.fromkeys(("noise_dims", "widths", "steps", "batch", "samples"), "the preset's"),
                           "max_stack": f"{d['max_stack']} on CPU; on GPUs a whole grid of one objective and data set: "
                                        "see README",
                           "cache_dir": f"<out>/{self.name}/cache"},
                    choices={"preset": {k: v.about for k, v in self.presets.items()}},
                    notes={"out": "the results root", "force": f"retrain {self.unit}s that already have a record"})
        return p

    def parse_args(self, parser: Parser, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """The command line over its experiment files: the ``--preset`` file, the ``--config``
        file over it, the options given over both. File values go through the option table
        like the command line's; any problem is one line and exit 2 before any work.
        ``args.experiment`` says where the values came from (`resolved`)."""
        argv = sys.argv[1:] if argv is None else list(argv)
        given = given_options(parser, argv)
        try:
            layers = [self.presets[given.get("preset", parser.get_default("preset"))]]
            if given.get("config") is not None:
                layers.append(experiments.load(given["config"]))
            values: list[dict[str, Any]] = []
            for layer in layers:
                if layer.command != self.name:
                    raise UsageError(f"{layer.path} is an experiment of python -m sweeps.{layer.command}")
                values.append(apply_config(parser, layer.values, str(layer.path)))
        except (UsageError, experiments.ExperimentError) as err:
            parser.error(str(err))
        args = parser.parse_args(argv, argparse.Namespace(**{k: v for layer in values for k, v in layer.items()}))
        if args.grid:  # a --grid study keeps the always-swept fields at one value unless asked
            for option in (LIST_FIELDS[f] for f in self.axes):
                if option in values[0] and not any(option in v for v in [*values[1:], given]):
                    setattr(args, option, None)  # the preset's grid: not asked
        files = dict.fromkeys(str(p.resolve()) for layer in reversed(layers) for p in layer.files)
        args.experiment = {"name": layers[-1].name, "command": parser.prog, "files": list(files),
                           "overrides": {k: v for k, v in given.items() if experiment_option(k)}}
        return args

    def resolved(self, args: argparse.Namespace) -> dict[str, Any]:
        """The experiment a planned command line runs, as plain data: its name, files (the
        first one's values over its bases', over the preset's), the options given over them
        and the value of every option that says what it runs."""
        def plain(name: str, value: Any) -> Any:
            return dict(value) if name in ("set", "grid") and value is not None else value
        return {**args.experiment, "overrides": {k: plain(k, v) for k, v in args.experiment["overrides"].items()},
                "options": {k: plain(k, v) for k, v in vars(args).items() if experiment_option(k)}}

    def dataset_names(self) -> list[str]:
        import data
        return [n for n in data.names() if not n.endswith(":") and data.get(n).kind in self.kinds]

    def parse_axes(self, args: argparse.Namespace) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """The axes (name -> values: the always-swept fields, list options with several
        values, every --grid) and the fixed values of the list options that are not axes
        (an unset one: `engine.RunConfig`'s default)."""
        from engine import field_default
        order = list(LIST_FIELDS)
        values = {k: getattr(args, option) or [field_default(k)] for k, option in LIST_FIELDS.items()}
        axes = {k: list(dict.fromkeys(v)) for k, v in values.items() if k in self.axes or len(set(v)) > 1}
        axes = {k: axes[k] for k in sorted(axes, key=lambda k: (k not in self.axes, order.index(k)))}
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
        axes, fixed = self.parse_axes(args)
        placement = placement_from_args(args)
        if args.max_stack is None:  # GPU: whole grids (launch-bound, memory to spare)
            args.max_stack = MAX_STACK if placement.on_gpu and self.stacks_on_gpu else self.defaults["max_stack"]
        if not 1 <= args.max_stack <= MAX_STACK:
            raise UsageError(f"--max-stack must be in 1..{MAX_STACK}")
        run_fields = set(RunConfig.__dataclass_fields__) - {"model", "dataset", "seed", "hp", "device"}
        given = {"steps": args.steps, "batch": args.batch, "n_samples": args.samples, "noise": args.noise}
        base = {**{k: v for k, v in given.items() if v is not None}, "ema": args.ema,
                "device": "cuda" if placement.on_gpu else "cpu", **fixed}
        cells = []
        try:
            for dataset, model, point in itertools.product(args.dataset, args.models,
                                                           itertools.product(*axes.values())):
                point = dict(zip(axes, point))
                run = {k: v for k, v in point.items() if k in run_fields}
                hp = {**dict(args.set), **{k: v for k, v in point.items() if k not in run_fields}}
                for seed in dict.fromkeys(args.seeds):
                    cfg = RunConfig(model=model, dataset=dataset, seed=seed, **{**base, **run}, hp=tuple(hp.items()))
                    cells.append(Cell(cfg, tuple(point.items()),
                                      store.sweep_dir(args.out, self.name, cfg.to_dict(), point)))
        except (ValueError, TypeError) as err:  # a --grid value's check says it as --set's: say --grid
            grid = "|".join(re.escape(k) for k, _ in args.grid if k not in run_fields)
            raise UsageError(re.sub(rf"^--set ({grid})=", r"--grid \1=", str(err)) if grid else str(err)) from None
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
        settings = dict.fromkeys(store.setting_dir(args.out, self.name, c.config.to_dict(), dict(c.axes))
                                 for c in plan.cells)
        for setting in settings:
            experiments.save_resolved(setting, self.resolved(args))
        tasks = stack_tasks(self.name, plan.cells, pending, evaluators.__getitem__, plan.plugins, args.max_stack,
                            long=plan.long)
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
        try:
            results = run_with_progress(run_task, tasks, plan.placement, len(pending), self.unit, root, record_lost,
                                        steps=lambda task: task.steps,
                                        weight=lambda task: task.step_cost)
        except UsageError as err:  # a Dask scheduler lost on the way
            fail(parser.prog, str(err))
        if pending:
            rss = [r["rss"] for r in results if r["rss"] is not None]
            print(f"trained {len(pending)} {self.unit}s in {time.perf_counter() - t0:.0f} s"
                  + (f"; peak worker memory {max(rss):.0f} MB" if rss else ""), file=sys.stderr)
        if not args.no_figures:
            print("\n\n".join(self.reporter(d) or f"no records in {d}" for d in settings))
        return crash_exit_code(results, self.unit)
