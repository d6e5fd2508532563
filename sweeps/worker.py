"""The one worker every command trains through: train a stack of runs, score each run,
store it as a record. A crash inside a task is recorded for each of its cells, not raised,
so the other tasks of a sweep go on.
"""
from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

import objectives
import store
from data.images import to_uint8
from engine import RunConfig, RunOutcome, Trainer
from metrics.images import ImageScoring
from metrics.ring import toy_metrics
from models import ArchConfig


@dataclass
class Evaluation:
    """What scoring a finished run gives its record: metrics, how they were made, and the
    samples in the form worth keeping (``store.write`` keyword arguments)."""

    metrics: dict[str, Any]
    scoring: dict[str, Any] = field(default_factory=dict)
    files: dict[str, np.ndarray] = field(default_factory=dict)


class Evaluator(Protocol):
    def __call__(self, outcome: RunOutcome, dataset: Any, device: str) -> Evaluation: ...


def evaluate_samples(outcome: RunOutcome, dataset: Any, device: str) -> Evaluation:
    """Mode metrics on toy data (`metrics.ring`); other data keep their samples unscored."""
    if dataset.kind != "toy":
        return Evaluation({}, files={"samples": outcome.samples})
    return Evaluation(toy_metrics(outcome.samples, dataset, outcome.config.seed), files={"samples": outcome.samples})


@dataclass(frozen=True)
class EvaluateImages:
    """FID/KID/IS of a run's samples as uint8 images (`metrics.images`), which it keeps."""

    scoring: ImageScoring

    def __call__(self, outcome: RunOutcome, dataset: Any, device: str) -> Evaluation:
        images = to_uint8(np.nan_to_num(outcome.samples, posinf=1.0, neginf=-1.0))
        metrics = self.scoring(images, dataset.images_uint8(), device) if outcome.status == "ok" else {}
        return Evaluation(metrics, self.scoring.describe(), {"images": images})


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its configuration, its grid point, and where its record lives."""

    config: RunConfig
    axes: tuple[tuple[str, Any], ...]
    path: Path


@dataclass(frozen=True)
class Task:
    """One stack of cells to train together; the plugins the worker must load first."""

    sweep: str
    cells: tuple[Cell, ...]
    evaluate: Evaluator
    plugins: tuple[str, ...] = ()


def peak_rss_mb() -> float:
    """Peak resident memory of this (worker) process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_outcome(outcome: RunOutcome, path: Path, evaluation: Evaluation, sweep: str = "train",
                 axes: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
                 extra: Callable[[Path], None] | None = None) -> store.Record:
    """Write one finished run's record (see `store.records`) and return it."""
    cfg = outcome.config
    record = store.Record(
        config=cfg.to_dict(), status=outcome.status, sweep=sweep, axes=dict(axes or {}), reason=outcome.reason,
        diverged_at=outcome.diverged_at, metrics=evaluation.metrics, scoring=evaluation.scoring,
        objective=objectives.get(cfg.model).describe(),
        run={"device": outcome.device, "wall_time_s": outcome.wall_time, "stack_size": outcome.stack_size,
             **(run or {})},
        provenance=store.provenance())
    trace = pd.DataFrame(outcome.trace, columns=outcome.diag_names).dropna(how="all")
    return store.write(path, record, trace=trace, generator=outcome.generator_state, snapshots=outcome.snapshots,
                       extra=extra, **evaluation.files)


def record_crash(task: Task, device: str, err: BaseException, t0: float) -> list[dict[str, Any]]:
    """Write a ``crashed`` record (reason and traceback) for each cell of a failed task and
    return the parent's result rows; crashed records are retried by the next run."""
    reason = f"{type(err).__name__}: {err}"
    tb = traceback.format_exc()
    for cell in task.cells:
        store.write(cell.path, store.Record(config=cell.config.to_dict(), status="crashed", sweep=task.sweep,
                                            axes=dict(cell.axes), reason=reason, traceback=tb,
                                            run={"device": device}, provenance=store.provenance()))
    return [{"path": str(c.path), "status": "crashed", "reason": reason, "metrics": {},
             "wall": time.perf_counter() - t0, "rss": peak_rss_mb()} for c in task.cells]


def run_task(task: Task, device: str) -> list[dict[str, Any]]:
    """Train one stack, score and record each run; returns one result row per cell."""
    t0 = time.perf_counter()
    try:
        for plugin in task.plugins:
            objectives.load_plugin(plugin)
        trainer = Trainer([c.config for c in task.cells], device)
        trainer.train()
        rows = []
        for cell, outcome in zip(task.cells, trainer.outcomes()):
            evaluation = task.evaluate(outcome, trainer.dataset, device)
            rss = peak_rss_mb()
            save_outcome(outcome, cell.path, evaluation, task.sweep, dict(cell.axes), {"peak_rss_mb": rss})
            rows.append({"path": str(cell.path), "status": outcome.status, "reason": outcome.reason,
                         "metrics": evaluation.metrics, "wall": time.perf_counter() - t0, "rss": rss})
        return rows
    except Exception as err:  # noqa: BLE001 - every crash is recorded and reported by the parent
        return record_crash(task, device, err, t0)


def stack_tasks(sweep: str, cells: Sequence[Cell], evaluate: Callable[[str], Evaluator], plugins: tuple[str, ...],
                workers: int, max_stack: int) -> list[Task]:
    """Group stackable cells into tasks, splitting groups so there are enough tasks to keep
    the workers busy: the largest stack size (<= max_stack) that still yields >= 2 tasks per
    worker (or one task per cell, if fewer) is used. Tasks are ordered most expensive first:
    every generator step makes 1 + critic_steps passes through a critic of fixed width and
    the generator, so a 5-critic-step MMD-GAN stack of width 20 still outlasts any
    single-critic stack, and longest first keeps the tail short."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.config.stack_key(), []).append(c)
    want = min(len(cells), 2 * workers)
    size = max(1, max_stack)
    while size > 1 and sum(-(-len(g) // size) for g in groups.values()) < want:
        size -= 1
    stacks = [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]

    def cost(stack: list[Cell]) -> float:
        c = stack[0].config
        critic = objectives.get(c.model).critic_steps(c.hyperparameters)
        return len(stack) * c.steps * (1 + critic) * (ArchConfig.critic_width ** 2 + c.width ** 2 / 4)
    return [Task(sweep, tuple(s), evaluate(s[0].config.dataset), plugins)
            for s in sorted(stacks, key=cost, reverse=True)]
