"""Run many independent tasks in worker processes: on CPU cores, pinned to GPUs, or on a Dask cluster.

- CPU (``devices=["cpu"]``): ``jobs`` worker processes with ``threads`` torch threads each
  (default 1). The networks here are tiny: one thread per worker and one worker per core
  is fastest, and extra threads under load spin-wait (we measured 13x slower steps with
  2 threads on a busy 2-core machine). Use ``--jobs`` to use more cores.
- GPUs (``devices=["cuda:0", "cuda:1"]``): by default ONE worker process per device
  (`GPU_WORKERS`), which trains its stacks one after another; ``jobs_per_device=K`` starts
  K, pinned to the device. One process, because concurrency on a GPU comes from fewer,
  larger stacks, not from more processes: a GPU sweep stacks every cell of an objective on
  a data set (all widths and seeds) into one batched model whose step is one CUDA-graph
  launch (`engine.graphs`), so one stack already keeps the device as busy as these small
  networks allow; processes sharing a GPU time-slice it (kernels of different CUDA
  contexts do not run concurrently without MPS) while each holds a context and stacks of
  its own. (Running a process's stacks on several CUDA streams at once would need a
  launching thread per stack; not done: unmeasured.)
- Dask (``backend="dask"``, ``scheduler="tcp://host:8786"``): the same tasks go to an
  existing cluster (checked before any work: `check_scheduler`); devices are assigned
  round-robin.
- Slurm (``backend="slurm"``): stacks go to Slurm jobs through submitit (`sweeps.slurm`),
  each with the devices and workers above inside the job.

Each local worker is a one-process loky executor of its own. A worker that dies (the
out-of-memory killer, a segfault) breaks only that executor: its task is handed to
``lost`` (the sweeps record its cells as crashed), a fresh process takes the worker's
place, and the other workers go on. (``joblib.Parallel`` would abort every task and could
not say which one killed its worker.) When the command is stopped (Ctrl-C, SIGTERM: see
`cli.clean_exit`), the way out kills every worker, so none trains on after the command
has ended. With one worker the tasks run in the calling process (no start-up cost).

Results come back as each task finishes.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing import Manager
from pathlib import Path
from typing import Any, TextIO

from joblib.externals.loky import ProcessPoolExecutor
from tqdm import tqdm

from cli import DISK_ERRORS, UsageError, check_device
from metrics.catalog import progress_line
from sweeps.slurm import SlurmOptions, run_slurm, slurm_from_args

TICK_S = 1.0  # seconds between `run_tasks` ticks while local workers run
CONNECT_TIMEOUT_S = 5  # a Dask scheduler that does not answer this fast is reported as unreachable
Lost = Callable[[Any, str, str], Any]  # (task, device, why its worker died, one line) -> its result


@dataclass(frozen=True)
class Placement:
    """Where tasks run: which devices, how many tasks per device, local processes or Dask."""

    devices: tuple[str, ...] = ("cpu",)
    jobs: int = 1  # CPU workers (ignored for GPUs, where jobs_per_device counts)
    jobs_per_device: int | None = 1  # None: chosen by `fitted` from the tasks and the devices' memory
    backend: str = "loky"  # or "dask", "slurm"
    scheduler: str | None = None
    threads: int = 1  # torch threads per CPU worker
    slurm: SlurmOptions | None = None  # backend "slurm": what each job asks for; devices are a job's

    @property
    def on_gpu(self) -> bool:
        return self.devices[0] != "cpu"

    @property
    def workers(self) -> int:
        return len(self.devices) * (self.jobs_per_device or 1) if self.on_gpu else self.jobs

    def threads_per_worker(self) -> int:
        return 1 if self.on_gpu else self.threads

    def fitted(self, tasks: int) -> Placement:
        """With ``jobs_per_device`` unset, `GPU_WORKERS` worker per GPU (see the module docstring)."""
        if not self.on_gpu or self.jobs_per_device is not None:
            return self
        return replace(self, jobs_per_device=GPU_WORKERS)


GPU_WORKERS = 1  # worker processes per GPU when --jobs-per-device is not given (see the module docstring)


def placement_from_args(args: argparse.Namespace) -> Placement:
    """The `Placement` of the parsed options ``--jobs``, ``--threads``, ``--devices``,
    ``--jobs-per-device``, ``--backend`` and ``--scheduler`` (`cli.options`), once the devices
    exist and the Dask scheduler answers; bad input raises `UsageError`."""
    if args.backend == "dask" and not args.scheduler:
        raise UsageError("--backend dask needs --scheduler ADDRESS")
    slurm = slurm_from_args(args) if args.backend == "slurm" else None
    devices = tuple(args.devices)
    if slurm:  # a job's devices: its own GPUs, not this machine's
        devices = tuple(f"cuda:{i}" for i in range(slurm.gpus)) or ("cpu",)
    elif args.backend == "dask":  # a cluster's devices cannot be checked from here
        check_scheduler(args.scheduler)
    else:
        for d in devices:
            check_device(d)
        cores = len(os.sched_getaffinity(0))
        if devices == ("cpu",) and args.jobs > cores:
            print(f"warning: --jobs {args.jobs} is more than this machine's {cores} cores; workers will share them "
                  "and each run slower", file=sys.stderr)
    return Placement(devices, args.jobs, args.jobs_per_device, args.backend, args.scheduler, args.threads, slurm)


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """`UsageError` (one line, within about ``timeout`` seconds) unless ``address`` is a Dask
    scheduler that answers and has at least one worker."""
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port
    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
        with Client(address, timeout=timeout) as client:
            client.wait_for_workers(1, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - malformed, unreachable, refused, TLS misconfigured, no workers
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"cannot use the Dask scheduler {address!r}: {why}") from None


def _limit_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)  # a local worker's OMP_NUM_THREADS is set when it starts (`_Worker`)


def _init_worker(threads: int) -> None:
    """A local worker's start: Ctrl-C is the parent's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # a Slurm job's preemption signal is its main process's
    _limit_threads(threads)


def _call(fn: Callable[..., Any], task: Any, device: str, threads: int) -> Any:
    """Dask worker side: limit threads, run."""
    _limit_threads(threads)
    return fn(task, device)


class _Worker:
    """One local worker process pinned to a device; a fresh process replaces a dead one."""

    def __init__(self, device: str, threads: int):
        self.device, self.threads = device, threads
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, fn: Callable[[Any, str], Any], task: Any) -> Future:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(1, initializer=_init_worker, initargs=(self.threads,),
                                                 env={"OMP_NUM_THREADS": str(self.threads)})
        return self._executor.submit(fn, task, self.device)

    def stop(self) -> None:
        """Kill the process (idle, busy or dead) and wait until it is gone."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, kill_workers=True)
            self._executor = None


def worker_death(err: BaseException) -> str:
    """One line for a worker process that died: loky's exit code, e.g. ``SIGKILL(-9)``."""
    code = re.search(r"exit codes of the workers are \{(.*?)\}", str(err))
    return (f"its worker process died ({code.group(1) if code else type(err).__name__}): "
            "killed for memory, a segfault, or killed from outside")


def _run_dask(fn: Callable[[Any, str], Any], tasks: Sequence[Any], placement: Placement, lost: Lost) -> Iterator[Any]:
    """The tasks on the Dask cluster: every submitted future is cancelled on the way out (the
    sweep stopped, failed, or ended), so the cluster trains nothing for a command that has
    ended; a scheduler lost on the way is `UsageError` (one line)."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker
    threads = placement.threads_per_worker()
    with Client(placement.scheduler, timeout=CONNECT_TIMEOUT_S) as client:
        futures = {}
        try:
            for i, task in enumerate(tasks):
                device = placement.devices[i % len(placement.devices)]
                futures[client.submit(_call, fn, task, device, threads, pure=False)] = (task, device)
            for future in as_completed(futures):
                task, device = futures[future]
                try:
                    result = future.result()
                except KilledWorker as err:  # Dask retried it on other workers; each of them died
                    result = lost(task, device, f"its worker processes died: {str(err).splitlines()[0]}")
                yield result
        except (FutureCancelledError, CommClosedError) as err:
            why = getattr(err, "reason", None) or str(err).splitlines()[0] or type(err).__name__
            raise UsageError(f"lost the Dask scheduler {placement.scheduler!r} ({why}); finished records are kept: "
                             "rerun the same command to resume") from None
        finally:
            with contextlib.suppress(Exception):  # a lost scheduler cannot be told; the rest are cancelled
                client.cancel(list(futures), force=True)


def run_tasks(fn: Callable[[Any, str], Any], tasks: Sequence[Any], placement: Placement, lost: Lost,
              tick: Callable[[], None] | None = None) -> Iterator[Any]:
    """Yield ``fn(task, device)`` for every task, in order of completion; a task whose worker
    process died yields ``lost(task, device, why)`` instead (``why``: one line). With local
    workers, ``tick()`` is called about every `TICK_S` seconds while they run (to show progress).

    ``fn`` must be importable by the workers (a module-level function or a `functools.partial`).
    """
    if not tasks:
        return
    if placement.backend in ("dask", "slurm"):
        yield from (run_slurm if placement.backend == "slurm" else _run_dask)(fn, tasks, placement, lost)
        return
    threads = placement.threads_per_worker()
    per = (placement.jobs_per_device or 1) if placement.on_gpu else placement.jobs
    devices = [d for _ in range(per) for d in placement.devices][:len(tasks)]
    if len(devices) == 1:
        _limit_threads(threads)
        for task in tasks:
            yield fn(task, devices[0])
        return
    workers = [_Worker(d, threads) for d in devices]
    queue: deque[Any] = deque(tasks)
    running: dict[Future, tuple[Any, _Worker]] = {}
    try:
        while queue or running:
            busy = {w for _, w in running.values()}
            for w in workers:
                if queue and w not in busy:
                    task = queue.popleft()
                    running[w.submit(fn, task)] = (task, w)
            done, _ = wait(running, timeout=TICK_S if tick else None, return_when=FIRST_COMPLETED)
            if tick:
                tick()
            for future in done:
                task, w = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool as err:
                    w.stop()
                    result = lost(task, w.device, worker_death(err))
                yield result
    finally:
        for w in workers:
            w.stop()


def describe(result: dict[str, Any]) -> str:
    """One progress line for a finished cell: its status, the metrics `metrics.catalog` shows
    in progress lines when it has them, and the reason when it did not finish normally."""
    text = result["status"]
    if shown := progress_line(result["metrics"]):
        text += ", " + shown
    if result["reason"]:
        text += f" ({result['reason']})"
    return text


PLAIN_EVERY_S = 30.0  # without a terminal, a progress line at least this often (while work goes on)...
PLAIN_EVERY_FRACTION = 0.05  # ...and whenever this much more of the work is done


def clock(seconds: float) -> str:
    """A duration as a clock reads it: ``4:10``, ``1:02:03``."""
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StepProgress:
    """A sweep's progress in generator steps summed over its stacks, finished cells beside it.

    A stack finishes all its cells at once, so a count of cells stays at zero for the first
    stacks' whole length and then guesses wildly; steps move from the first minute. The
    share done and the time left weigh each stack's steps by its ``weights`` (its work per
    step, `sweeps.worker.step_cost`): a sweep trains its costliest stacks first, so counting
    bare steps would promise too late an end for most of its length. On a terminal a tqdm bar
    of that share; otherwise (a log file, a batch job) one plain line (`line`) every
    `PLAIN_EVERY_S` seconds or `PLAIN_EVERY_FRACTION` of the work, never carriage returns."""

    def __init__(self, steps: Sequence[int], cells: int, unit: str, stream: TextIO | None = None,
                 terminal: bool | None = None, weights: Sequence[float] | None = None):
        self.stream = stream or sys.stderr
        self.steps, self.done = list(steps), [0] * len(steps)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.steps)
        self.total, self.cells, self.cells_done, self.unit = sum(self.steps), cells, 0, unit
        self.work = sum(s * w for s, w in zip(self.steps, self.weights))
        self.started = self._shown_at = time.monotonic()
        self._shown = (0, 0.0)  # the cells and the share of the work of the last plain line
        terminal = self.stream.isatty() if terminal is None else terminal
        self.bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]",
                        file=self.stream, disable=not self.total) if terminal else None

    def share(self) -> float:
        """The share of the sweep's work done, 0..1 (steps weighted by their stack's cost)."""
        return sum(d * w for d, w in zip(self.done, self.weights)) / self.work if self.work else 0.0

    def advance(self, task: int, steps_done: int) -> None:
        """Task ``task``'s stack has trained ``steps_done`` steps."""
        self.done[task] = max(self.done[task], min(steps_done, self.steps[task]))
        self._show()

    def finish(self, task: int, cells: int) -> None:
        """Task ``task`` has ended (all its steps count, diverged or not), with ``cells`` cells."""
        self.done[task], self.cells_done = self.steps[task], self.cells_done + cells
        self._show()

    def write(self, text: str) -> None:
        """One line on the stream, above the bar if there is one."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def line(self) -> str:
        """``progress: 12,300/126,000 steps (24.1% of the work), 3/96 cells, elapsed 4:10, eta 13:10``."""
        share, elapsed = self.share(), time.monotonic() - self.started
        eta = clock(elapsed * (1 - share) / share) if share else "?"
        return (f"progress: {sum(self.done):,}/{self.total:,} steps ({100 * share:.1f}% of the work), "
                f"{self.cells_done}/{self.cells} {self.unit}s, elapsed {clock(elapsed)}, eta {eta}")

    def close(self) -> None:
        """End the bar, or say the last plain line unless it was just said."""
        if self.bar is not None:
            self.bar.close()
        elif self._shown != (self.cells_done, self.share()):
            self._say()

    def _show(self) -> None:
        share = self.share()
        if self.bar is not None:
            self.bar.set_postfix_str(f"{sum(self.done):,}/{self.total:,} steps, {self.cells_done}/{self.cells} "
                                     f"{self.unit}s", refresh=False)
            self.bar.update(100 * share - self.bar.n)
            return
        due = time.monotonic() - self._shown_at >= PLAIN_EVERY_S
        if due or share - self._shown[1] >= PLAIN_EVERY_FRACTION:
            self._say()

    def _say(self) -> None:
        self.write(self.line())
        self._shown_at, self._shown = time.monotonic(), (self.cells_done, self.share())


@dataclass(frozen=True)
class _Post:
    """A worker's report of its stack's steps to the parent: ``(task index, steps done)`` on a
    queue the parent drains (loky workers cannot call back into the parent)."""

    queue: Any  # a multiprocessing.Manager().Queue() proxy: it travels to worker processes

    def __call__(self, task: int, steps_done: int) -> None:
        self.queue.put((task, steps_done))


def _indexed(fn: Callable[..., Any], report: Callable[[int, int], None] | None, item: tuple[int, Any],
             device: str) -> tuple[int, Any]:
    """Worker side of ``item = (index, task)``: ``(index, fn(task, device))``, with
    ``progress=`` reporting ``report(index, steps done)`` when there is a ``report``."""
    index, task = item
    if report is None:
        return index, fn(task, device)
    return index, fn(task, device, progress=partial(report, index))


def run_with_progress(fn: Callable[..., list[dict[str, Any]]], tasks: Sequence[Any], placement: Placement,
                      total: int, unit: str, root: Path, lost: Lost, *, steps: Callable[[Any], int],
                      weight: Callable[[Any], float] | None = None,
                      stream: TextIO | None = None) -> list[dict[str, Any]]:
    """`run_tasks` behind `StepProgress` over ``steps(task)`` generator steps per task, each
    weighted by ``weight(task)`` (its work per step; equal without), and ``total`` cells,
    printing one line per finished cell (its path under ``root``, `describe`,
    wall time); returns the results of every cell. Local workers report their steps as they
    train (``fn(task, device, progress=callable(steps done))``, as `sweeps.worker.run_task`
    takes it); Dask and Slurm tasks count when they end."""
    progress = StepProgress([steps(t) for t in tasks], total, unit, stream,
                            weights=[weight(t) for t in tasks] if weight else None)
    report: Callable[[int, int], None] | None = None  # Dask and Slurm tasks count when they end
    manager = queue = None
    if placement.backend == "loky" and min(placement.workers, len(tasks)) > 1:
        manager = Manager()
        queue = manager.Queue()
        report = _Post(queue)
    elif placement.backend == "loky":  # the tasks run in this process: report straight to the bar
        report = progress.advance

    def drain() -> None:
        while queue is not None and not queue.empty():
            progress.advance(*queue.get_nowait())

    done = []
    try:
        for index, results in run_tasks(partial(_indexed, fn, report), list(enumerate(tasks)), placement,
                                        lambda item, device, why: (item[0], lost(item[1], device, why)),
                                        tick=drain if queue is not None else None):
            drain()
            for r in results:
                rel = Path(r["path"]).relative_to(root)
                wall = f" [{r['wall']:.0f} s]" if r["wall"] is not None else ""
                progress.write(f"{rel}: {describe(r)}{wall}")
                done.append(r)
            progress.finish(index, len(results))
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        raise disk_stop(err, root) from None
    finally:
        progress.close()
        if manager is not None:
            manager.shutdown()
    return done


def disk_stop(err: OSError, root: Path) -> OSError:
    """What a sweep stops with when a worker's disk fails (full, over quota, read-only): one
    line (`cli.clean_exit` says it) naming where it wrote and what it needs. Nothing is left
    half-written (`core.files.atomic_path`), the finished records stay, and the same
    command resumes once there is space."""
    needs = "make it writable" if err.errno == errno.EROFS else "free space there (or raise the quota)"
    return OSError(err.errno, f"{err.strerror or os.strerror(err.errno)} writing {err.filename or f'below {root}'}: "
                   f"the sweep stopped; {needs}, then rerun the same command to resume (finished records are kept)")


def crash_exit_code(results: Sequence[dict[str, Any]], unit: str) -> int:
    """1 (with a hint on stderr) when any cell crashed, else 0."""
    crashed = sum(r["status"] == "crashed" for r in results)
    if not crashed:
        return 0
    print(f"{crashed} {unit}(s) crashed; see their record.json ('traceback'). "
          "Rerun the same command to retry them.", file=sys.stderr)
    return 1
