"""Run many independent tasks with joblib: on CPU cores, pinned to GPUs, or on a Dask cluster.

- CPU (``devices=["cpu"]``): ``jobs`` worker processes with ``threads`` torch threads each
  (default 1). The networks here are tiny: one thread per worker and one worker per core
  is fastest, and extra threads under load spin-wait (we measured 13x slower steps with
  2 threads on a busy 2-core machine). Use ``--jobs`` to use more cores.
- GPUs (``devices=["cuda:0", "cuda:1"]``, ``jobs_per_device=K``): ``len(devices) * K``
  workers; every task takes a device token from a shared queue before it starts and gives
  it back when done, so each device runs at most K tasks at a time and none sits idle
  while another is overloaded.
- Dask (``backend="dask"``, ``scheduler="tcp://host:8786"``): the same tasks go to an
  existing cluster through joblib's Dask backend; devices are assigned round-robin.

Tasks are plain picklable callables' arguments; results come back as each task finishes.
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from tqdm import tqdm

from cli import UsageError, check_device


@dataclass(frozen=True)
class Placement:
    """Where tasks run: which devices, how many tasks per device, which joblib backend."""

    devices: tuple[str, ...] = ("cpu",)
    jobs: int = 1  # CPU workers (ignored for GPUs, where jobs_per_device counts)
    jobs_per_device: int = 1
    backend: str = "loky"  # or "dask"
    scheduler: str | None = None
    threads: int = 1  # torch threads per CPU worker

    @property
    def on_gpu(self) -> bool:
        return self.devices[0] != "cpu"

    @property
    def workers(self) -> int:
        return len(self.devices) * self.jobs_per_device if self.on_gpu else self.jobs

    def threads_per_worker(self) -> int:
        return 1 if self.on_gpu else self.threads


def add_placement_args(parser: argparse.ArgumentParser, unit: str = "cells") -> None:
    """The options every sweep shares: --jobs, --threads, --devices, --jobs-per-device,
    --backend, --scheduler."""
    parser.add_argument("--jobs", type=int, default=1, help="parallel CPU workers (default 1; use one per core)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per CPU worker (default 1, fastest for these small networks)")
    parser.add_argument("--devices", default="cpu", help="cpu (default) or a comma list like cuda:0,cuda:1")
    parser.add_argument("--jobs-per-device", type=int, default=1, help=f"concurrent {unit} per GPU (default 1)")
    parser.add_argument("--backend", choices=["loky", "dask"], default="loky",
                        help="joblib backend: loky (local processes, default) or dask (needs --scheduler)")
    parser.add_argument("--scheduler", help="Dask scheduler address for --backend dask, e.g. tcp://host:8786")


def placement_from_args(args: argparse.Namespace) -> Placement:
    """Validate the options of `add_placement_args`; bad input raises `UsageError`."""
    if min(args.jobs, args.threads, args.jobs_per_device) < 1:
        raise UsageError("--jobs, --threads and --jobs-per-device must be at least 1")
    devices = tuple(d.strip() for d in args.devices.split(",") if d.strip())
    if not devices:
        raise UsageError("--devices is empty")
    if any(d == "cpu" for d in devices) and len(devices) > 1:
        raise UsageError("--devices mixes cpu and cuda devices")
    if args.backend == "dask" and not args.scheduler:
        raise UsageError("--backend dask needs --scheduler ADDRESS")
    if args.backend != "dask":  # a cluster's devices cannot be checked from here
        for d in devices:
            check_device(d)
    return Placement(devices, args.jobs, args.jobs_per_device, args.backend, args.scheduler, args.threads)


def _limit_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _call(fn: Callable[..., Any], task: Any, device: str | None, tokens: Any, threads: int) -> Any:
    """Worker side: take a device (token queue or fixed), limit threads, run, give it back."""
    _limit_threads(threads)
    if tokens is None:
        return fn(task, device or "cpu")
    device = tokens.get()
    try:
        return fn(task, device)
    finally:
        tokens.put(device)


@contextlib.contextmanager
def _backend(placement: Placement) -> Iterator[None]:
    if placement.backend == "dask":
        from distributed import Client
        with Client(placement.scheduler) as client, joblib.parallel_config(backend="dask"):
            client.wait_for_workers(1, timeout=60)
            yield
    else:
        yield


def run_tasks(fn: Callable[[Any, str], Any], tasks: Sequence[Any], placement: Placement) -> Iterator[Any]:
    """Yield ``fn(task, device)`` for every task, in order of completion.

    ``fn`` must be importable by the workers (a module-level function).
    """
    if not tasks:
        return
    threads = placement.threads_per_worker()
    n_jobs = min(placement.workers, len(tasks))
    tokens, manager = None, None
    if placement.backend == "dask":
        calls = [joblib.delayed(_call)(fn, t, placement.devices[i % len(placement.devices)], None, threads)
                 for i, t in enumerate(tasks)]
    elif n_jobs == 1:
        _limit_threads(threads)
        for t in tasks:
            yield fn(t, placement.devices[0])
        return
    else:
        if placement.on_gpu:
            manager = multiprocessing.Manager()
            tokens = manager.Queue()
            for _ in range(placement.jobs_per_device):
                for d in placement.devices:
                    tokens.put(d)
        device = None if placement.on_gpu else "cpu"
        calls = [joblib.delayed(_call)(fn, t, device, tokens, threads) for t in tasks]
    try:
        with _backend(placement):
            backend = None if placement.backend == "dask" else "loky"
            yield from joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered",
                                       pre_dispatch="n_jobs")(calls)
    finally:
        if manager is not None:
            manager.shutdown()


def describe(result: dict[str, Any], metrics_text: Callable[[dict[str, Any]], str]) -> str:
    """One progress line for a finished cell: its status, ``metrics_text(metrics)`` when it
    has metrics, and the reason when it did not finish normally."""
    text = result["status"]
    if result["metrics"]:
        text += ", " + metrics_text(result["metrics"])
    if result["reason"]:
        text += f" ({result['reason']})"
    return text


def run_with_progress(fn: Callable[[Any, str], list[dict[str, Any]]], tasks: Sequence[Any],
                      placement: Placement, total: int, unit: str, root: Path,
                      summary: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """`run_tasks` behind a progress bar over ``total`` cells, printing one line per finished
    cell (its path under ``root``, `describe` with ``summary``, wall time); returns the
    results of every cell."""
    done = []
    with tqdm(total=total, desc=f"{unit}s", unit=unit, file=sys.stderr, disable=not total) as bar:
        for results in run_tasks(fn, tasks, placement):
            for r in results:
                rel = Path(r["path"]).relative_to(root)
                bar.write(f"{rel}: {describe(r, summary)} [{r['wall']:.0f} s]", file=sys.stderr)
                bar.update(1)
                done.append(r)
    return done


def crash_exit_code(results: Sequence[dict[str, Any]], unit: str) -> int:
    """1 (with a hint on stderr) when any cell crashed, else 0."""
    crashed = sum(r["status"] == "crashed" for r in results)
    if not crashed:
        return 0
    print(f"{crashed} {unit}(s) crashed; see their record.json ('traceback'). "
          "Rerun the same command to retry them.", file=sys.stderr)
    return 1
