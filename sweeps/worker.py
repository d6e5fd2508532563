"""The one worker every command trains through: train a stack of runs, score each run,
store it as a record. A crash inside a task is recorded for each of its cells, not raised,
so the other tasks of a sweep go on; so is a task whose worker process died
(`record_lost`, called by the parent).

Stacks are a pure function of the sweep's cells and ``--max-stack`` (`stack_tasks`), never
of the worker count or of what an earlier, interrupted run finished: a stacked run does
not compute bit for bit what it computes alone (batched kernels and the fused optimiser
round differently), so the same membership is what makes a cell's numbers the same
however the sweep is run. Every record says which stack it trained in (``run["stack"]``).
"""
from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import data
import objectives
import store
from cli import DISK_ERRORS
from data.images import to_uint8
from engine import RunConfig, RunOutcome
from metrics import catalog
from metrics.ring import toy_metrics
from models import ArchConfig
from sweeps.longrun import LongRun, SampleView, StackRun

if TYPE_CHECKING:  # torch-fidelity (and torchvision) load only where images are scored
    from metrics.images import ImageScoring


@dataclass
class Evaluation:
    """What scoring a finished run gives its record: metrics, how they were made, and the
    samples in the form worth keeping (``store.write`` keyword arguments)."""

    metrics: dict[str, Any]
    scoring: dict[str, Any] = field(default_factory=dict)
    files: dict[str, np.ndarray] = field(default_factory=dict)


class Evaluator:
    """How a data kind's samples are scored (`score`): a finished run's final samples
    (``__call__``), a sample during training (`sweeps.longrun`), stored samples again
    (`sweeps.rescore`). One scoring, so the three agree."""

    def score(self, samples: np.ndarray, dataset: Any, seed: int, device: str) -> Evaluation:
        """Metrics of ``samples`` of the run of ``seed`` (which seeds its reference data), how
        they were made, and the samples in the form a record keeps."""
        raise NotImplementedError

    def __call__(self, outcome: RunOutcome, dataset: Any, device: str) -> Evaluation:
        return self.score(outcome.samples, dataset, outcome.config.seed, device)


@dataclass(frozen=True)
class EvaluateSamples(Evaluator):
    """Mode metrics on toy data (`metrics.ring`); other data keep their samples unscored."""

    def score(self, samples: np.ndarray, dataset: Any, seed: int, device: str) -> Evaluation:
        return Evaluation(toy_metrics(samples, dataset, seed) if dataset.kind == "toy" else {},
                          files={"samples": samples})


evaluate_samples = EvaluateSamples()


@dataclass(frozen=True)
class EvaluateImages(Evaluator):
    """FID/KID/IS/precision/recall of a run's samples as uint8 images (`metrics.images`),
    which it keeps; a run that did not finish ``ok`` keeps its images unscored."""

    scoring: ImageScoring

    def score(self, samples: np.ndarray, dataset: Any, seed: int, device: str) -> Evaluation:
        images = samples if samples.dtype == np.uint8 else to_uint8(samples)
        return Evaluation(self.scoring(images, dataset.images_uint8(), device), self.scoring.describe(),
                          {"images": images})

    def __call__(self, outcome: RunOutcome, dataset: Any, device: str) -> Evaluation:
        if outcome.status == "ok":
            return super().__call__(outcome, dataset, device)
        return Evaluation({}, self.scoring.describe(), {"images": to_uint8(outcome.samples)})


def score(evaluate: Evaluator, outcome: RunOutcome, dataset: Any, device: str) -> Evaluation:
    """``evaluate(outcome)``, and with an EMA generator (`engine.ema`) its samples scored
    the same way beside it: metrics as ``ema_<name>``, files as ``<name>_ema``."""
    raw = evaluate(outcome, dataset, device)
    if outcome.ema_samples is None:
        return raw
    ema = evaluate(replace(outcome, samples=outcome.ema_samples), dataset, device)
    return Evaluation({**raw.metrics, **{f"ema_{k}": v for k, v in ema.metrics.items()}}, raw.scoring,
                      {**raw.files, **{f"{k}_ema": v for k, v in ema.files.items()}})


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its configuration, its grid point, and where its record lives."""

    config: RunConfig
    axes: tuple[tuple[str, Any], ...]
    path: Path


Figures = Callable[[RunOutcome, Any, pd.DataFrame | None, Path], None]
"""Draws a finished run's own figures: (outcome, data set, metrics over steps, the record's
temporary folder to draw into). A module-level function, so a task can travel to a worker."""


@dataclass(frozen=True)
class Task:
    """One stack of cells trained together, and the plugins the worker must load first.
    Only the ``pending`` cells (indices into ``cells``) are scored and recorded; the others
    already have finished records and train along, so that every run of the stack computes
    what it computes in an uninterrupted sweep. ``snapshot_steps`` and ``figures`` add a
    single run's extras (`sweeps.train`): snapshots at those steps, figures in each record.
    ``source`` is the code the command started with, read when the tasks are made."""

    sweep: str
    cells: tuple[Cell, ...]
    evaluate: Evaluator
    plugins: tuple[str, ...] = ()
    pending: tuple[int, ...] = ()
    long: LongRun = LongRun()
    snapshot_steps: tuple[int, ...] = ()
    figures: Figures | None = None
    source: store.Source | None = None  # the command's code (`store.source`), which its records name

    @property
    def steps(self) -> int:
        """The generator steps the stack trains (its runs share their length)."""
        return self.cells[0].config.steps

    @property
    def step_cost(self) -> float:
        """The stack's work per generator step (`step_cost`), which weights its progress."""
        return step_cost([c.config for c in self.cells])

    def stack(self, index: int) -> dict[str, Any]:
        """What a record says about the stack it trained in (see `stack_info`)."""
        return stack_info([c.config for c in self.cells], index)


def step_cost(configs: Sequence[RunConfig]) -> float:
    """A stack's work per generator step, in arbitrary units, for ordering stacks and
    weighting progress: every generator step makes 1 + critic_steps passes through a critic
    of fixed width and each run's generator, so a 5-critic-step MMD-GAN stack of width 20 still
    outlasts any single-critic stack. A model, not a measurement (it leaves out how costly
    each objective's critic pass is)."""
    c = configs[0]
    critic = objectives.get(c.model).critic_steps(c.hyperparameters)
    return (1 + critic) * sum(ArchConfig.critic_width ** 2 + cfg.width ** 2 / 4 for cfg in configs)


def stack_info(configs: Sequence[RunConfig], index: int) -> dict[str, Any]:
    """``{"size", "index", "members"}``: the stack's size, this run's place in it and every
    member's configuration key, so a reader can see which runs trained together."""
    return {"size": len(configs), "index": index, "members": [c.key() for c in configs]}


def peak_rss_mb() -> float:
    """Peak resident memory of this (worker) process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_outcome(outcome: RunOutcome, path: Path, evaluation: Evaluation, sweep: str = "train",
                 axes: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
                 extra: Callable[[Path], None] | None = None, curves: pd.DataFrame | None = None,
                 tensorboard: Path | None = None) -> store.Record:
    """Write one finished run's record (see `store.records`) and return it; ``run`` adds to
    what the record says about the run (its ``stack``, peak memory), ``curves`` are its
    metrics over steps, ``tensorboard`` its live view's folder."""
    cfg = outcome.config
    record = store.Record(
        config=cfg.to_dict(), status=outcome.status, sweep=sweep, axes=dict(axes or {}), reason=outcome.reason,
        diverged_at=outcome.diverged_at, metrics=evaluation.metrics, scoring=evaluation.scoring,
        objective=objectives.get(cfg.model).describe(), metric_info=catalog.describe(evaluation.metrics),
        run={"device": outcome.device, "wall_time_s": outcome.wall_time, **(run or {})},
        provenance=store.provenance())
    trace = pd.DataFrame(outcome.trace, columns=outcome.diag_names).dropna(how="all")
    return store.write(path, record, trace=trace, generator=outcome.generator_state, snapshots=outcome.snapshots,
                       curves=curves, tensorboard=tensorboard, extra=extra, **evaluation.files)


def record_crash(task: Task, cells: Sequence[Cell], device: str, reason: str, details: str,
                 wall: float | None, rss: float | None) -> list[dict[str, Any]]:
    """Write a ``crashed`` record (``reason`` in one line, ``details`` such as the traceback)
    for each of ``cells`` and return the parent's result rows; crashed records are retried
    by the next run. A crash record that cannot be written (a full disk) is said in its row."""
    rows = []
    for cell in cells:
        why = reason
        try:
            store.write(cell.path, store.Record(config=cell.config.to_dict(), status="crashed", sweep=task.sweep,
                                                axes=dict(cell.axes), reason=reason, traceback=details,
                                                run={"device": device, "stack": task.stack(task.cells.index(cell))},
                                                provenance=store.provenance()))
        except OSError as err:
            if disk_failed(err):
                raise
            why = f"{reason}; its crash record could not be written either ({err.strerror or err})"
        rows.append({"path": str(cell.path), "status": "crashed", "reason": why, "metrics": {}, "wall": wall,
                     "rss": rss})
    return rows


def disk_failed(err: BaseException) -> bool:
    """Whether ``err`` is a full disk, an exceeded quota or a read-only file system
    (`cli.DISK_ERRORS`): the machine's problem, which stops a sweep rather than crash a cell."""
    return isinstance(err, OSError) and err.errno in DISK_ERRORS


def record_lost(task: Task, device: str, why: str) -> list[dict[str, Any]]:
    """The parent's record of a task whose worker process died (``why``, one line): every
    pending cell is recorded as crashed."""
    return record_crash(task, [task.cells[i] for i in task.pending], device, why, why, None, None)


def run_task(task: Task, device: str, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Train one stack (from its checkpoint if a killed run left one, see `sweeps.longrun`),
    score and record each pending run, then remove the checkpoint; returns one result row
    per pending cell. ``progress(steps done)`` follows the training."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        if task.source is not None:
            store.adopt(task.source)
        for plugin in task.plugins:
            objectives.load_plugin(plugin)
        configs = [c.config for c in task.cells]
        live_dir = store.claim_live_dir if task.long.tensorboard else store.live_dir
        live = [live_dir(c.path) if i in task.pending else None for i, c in enumerate(task.cells)]
        dataset = data.get(configs[0].dataset)
        checkpoint = store.stack_checkpoint(task.cells[0].path, [c.key() for c in configs])
        stack = StackRun(configs, device, task.long, checkpoint, live,
                         lambda samples, r: task.evaluate.score(samples, dataset, configs[r].seed, device).metrics,
                         SampleView(dataset, [c.seed for c in configs]) if task.long.tensorboard else None,
                         snapshot_steps=task.snapshot_steps)
        stack.run(progress)
        outcomes = stack.trainer.outcomes()
        for i in task.pending:
            cell, outcome = task.cells[i], outcomes[i]
            evaluation = score(task.evaluate, outcome, stack.trainer.dataset, device)
            rss, curves = peak_rss_mb(), stack.curve(i)
            figures = None if task.figures is None else partial(task.figures, outcome, stack.trainer.dataset, curves)
            save_outcome(outcome, cell.path, evaluation, task.sweep, dict(cell.axes),
                         {"stack": task.stack(i), "peak_rss_mb": rss, "plugins": list(task.plugins),
                          **stack.provenance()}, extra=figures,
                         curves=curves, tensorboard=live[i] if task.long.tensorboard else None)
            rows.append({"path": str(cell.path), "status": outcome.status, "reason": outcome.reason,
                         "metrics": evaluation.metrics, "wall": time.perf_counter() - t0, "rss": rss})
        stack.discard_checkpoint()
        return rows
    except Exception as err:  # noqa: BLE001 - every crash is recorded and reported by the parent
        if disk_failed(err):  # no run can be recorded: the sweep stops (`sweeps.parallel.run_tasks`)
            raise
        rest = [task.cells[i] for i in task.pending[len(rows):]]  # the runs recorded so far stay
        return rows + record_crash(task, rest, device, f"{type(err).__name__}: {err}", traceback.format_exc(),
                                   time.perf_counter() - t0, peak_rss_mb())


def stack_tasks(sweep: str, cells: Sequence[Cell], pending: Collection[Cell], evaluate: Callable[[str], Evaluator],
                plugins: tuple[str, ...], max_stack: int, long: LongRun | None = None,
                snapshot_steps: Sequence[int] = (), figures: Figures | None = None) -> list[Task]:
    """The tasks of a sweep: its ``cells`` that can train together (equal
    `RunConfig.stack_key`: seeds, noise dimensions and generator widths of one objective and
    setting), in plan order, cut into consecutive stacks of at most ``max_stack``, each
    ordered by width (a CPU's generator of several widths is one network per width,
    `models.stacked.WidthGroups`, whose runs are then slices); one task per stack with a
    ``pending`` cell (its finished members train along), carrying ``long``,
    ``snapshot_steps`` and ``figures`` (see `Task`). Membership depends on the cells and
    ``max_stack`` alone (see the module docstring); a sweep with fewer stacks than workers
    leaves workers idle rather than change it.

    Tasks are ordered most expensive first (`step_cost` times steps), as longest first
    keeps the tail short."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.config.stack_key(), []).append(c)
    stacks = [sorted(g[i:i + max_stack], key=lambda c: c.config.width)
              for g in groups.values() for i in range(0, len(g), max_stack)]
    pending = set(pending)

    def cost(stack: Sequence[Cell]) -> float:
        return step_cost([c.config for c in stack]) * stack[0].config.steps
    todo = [(s, tuple(i for i, c in enumerate(s) if c in pending)) for s in sorted(stacks, key=cost, reverse=True)]
    return [Task(sweep, tuple(s), evaluate(s[0].config.dataset), plugins, idx, long or LongRun(),
                 tuple(snapshot_steps), figures, store.source())
            for s, idx in todo if idx]
