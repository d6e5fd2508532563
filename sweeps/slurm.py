"""Run a sweep's stacks as Slurm jobs through submitit (``--backend slurm``).

Each job trains one stack, or ``--stacks-per-job`` of them, with the job's own local
placement (`sweeps.parallel.run_tasks` inside the job: ``--jobs`` CPU workers, or its
``--slurm-gpus`` GPUs with ``--jobs-per-device`` workers each), and writes its records into
the same record store as a local run (the worker is `sweeps.worker.run_task`, unchanged).
The command waits for the jobs and reports each stack as its job ends.

Preemption and time limits: submitit asks Slurm for a signal (USR2) shortly before a job is
stopped and calls `StackJob.checkpoint`, which resubmits the job (submitit's
``Checkpointable`` protocol) without the stacks it has finished. The stack that was
training resumes from its latest checkpoint (`sweeps.longrun.StackRun`: every
``--checkpoint-minutes``, or ``--checkpoint-steps``) and ends with the samples of a run
never stopped, bit for bit; what it trained after that checkpoint is trained again. The
signal is not a safe point to save training state (it may arrive mid-step), so nothing is
saved in the handler: keep ``--checkpoint-minutes`` well below the time limit.

submitit is the optional extra ``slurm``; it is imported only when this backend is used.
"""
from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import UsageError

if TYPE_CHECKING:
    from sweeps.parallel import Lost, Placement

POLL_S = 2.0  # seconds between looks at the jobs' states


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm job asks for, and where submitit keeps its files and logs."""

    time_min: int = 240
    gpus: int = 0  # GPUs per job; 0: the job trains on CPU
    partition: str | None = None
    logs: Path = Path("results/slurm-logs")
    stacks_per_job: int = 1
    cluster: str = "slurm"


def slurm_from_args(args: argparse.Namespace) -> SlurmOptions:
    """What the ``--slurm-*`` options and ``--stacks-per-job`` ask for (`cli.options` checks
    their ranges as they are parsed), once submitit and sbatch are there; bad input raises
    `UsageError`. The log folder defaults to ``<--out>/slurm-logs``."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UsageError("--backend slurm needs submitit (install the 'slurm' extra)") from None
    if tuple(args.devices) != ("cpu",):
        raise UsageError("with --backend slurm, --slurm-gpus N gives each job N GPUs; --devices is for local runs")
    if args.slurm_cluster == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--backend slurm needs Slurm's sbatch on PATH (run it on the cluster's login node; "
                         "--slurm-cluster local tries the jobs on this machine)")
    logs = args.slurm_logs or Path(getattr(args, "out", None) or "results") / "slurm-logs"
    return SlurmOptions(args.slurm_time, args.slurm_gpus, args.slurm_partition, Path(logs), args.stacks_per_job,
                        args.slurm_cluster)


class StackJob:
    """One Slurm job: ``fn(task, device)`` for each of ``tasks`` with the job's local
    ``placement``; returns their results in task order. Checkpointable (submitit's protocol,
    see the module docstring): a requeued job keeps the results of the tasks it finished and
    trains only the others."""

    def __init__(self, fn: Callable[[Any, str], Any], tasks: Sequence[Any], placement: Placement, lost: Lost):
        self.fn, self.tasks, self.placement, self.lost = fn, list(tasks), placement, lost
        self.results: dict[int, Any] = {}

    def __call__(self) -> list[Any]:
        from sweeps.parallel import run_tasks
        todo = [i for i in range(len(self.tasks)) if i not in self.results]
        indexed = [(i, self.tasks[i]) for i in todo]
        for i, result in run_tasks(_indexed, [(self.fn, i, t) for i, t in indexed], self.placement,
                                   lambda task, device, why: (task[1], self.lost(task[2], device, why))):
            self.results[i] = result
        return [self.results[i] for i in range(len(self.tasks))]

    def checkpoint(self) -> Any:
        """The resubmission submitit requeues on a time limit or preemption."""
        import submitit
        return submitit.helpers.DelayedSubmission(self)


def _indexed(item: tuple[Callable[[Any, str], Any], int, Any], device: str) -> tuple[int, Any]:
    """``(i, fn(task, device))`` for ``item = (fn, i, task)``: results matched to tasks in any order."""
    fn, i, task = item
    return i, fn(task, device)


def job_placement(placement: Placement) -> Placement:
    """Where a job's stacks run inside the job: its own GPUs (``cuda:0``..) or CPU workers, locally."""
    gpus = placement.slurm.gpus if placement.slurm else 0
    devices = tuple(f"cuda:{i}" for i in range(gpus)) or ("cpu",)
    return replace(placement, devices=devices, backend="loky", scheduler=None, slurm=None,
                   jobs_per_device=placement.jobs_per_device or 1)


def executor(options: SlurmOptions, placement: Placement) -> Any:
    """The submitit executor of ``options``: time limit, GPUs, partition, CPUs for the job's workers."""
    import submitit
    ex = submitit.AutoExecutor(folder=options.logs, cluster=options.cluster)
    cpus = placement.jobs * placement.threads if not options.gpus else options.gpus * (placement.jobs_per_device or 1)
    ex.update_parameters(name="gramharness", timeout_min=options.time_min, gpus_per_node=options.gpus,
                         cpus_per_task=cpus, tasks_per_node=1, nodes=1,
                         **({"slurm_partition": options.partition} if options.partition else {}))
    return ex


def run_slurm(fn: Callable[[Any, str], Any], tasks: Sequence[Any], placement: Placement, lost: Lost,
              submitted: Callable[[list[Any]], None] | None = None) -> Iterator[Any]:
    """Yield ``fn(task, device)`` for every task, trained in Slurm jobs (``placement.slurm``),
    as their jobs end; a job that fails (killed for memory, a node lost, out of requeues)
    yields ``lost(task, device, why)`` for each of its tasks. ``submitted`` sees the jobs
    (tests interrupt them). Stopping the command cancels the jobs that have not ended."""
    import submitit
    options = placement.slurm or SlurmOptions()
    inside = job_placement(placement)
    per = options.stacks_per_job
    groups = [list(tasks[i:i + per]) for i in range(0, len(tasks), per)]
    ex = executor(options, placement)
    with ex.batch():
        pending = [ex.submit(StackJob(fn, g, inside, lost)) for g in groups]
    jobs = {job.job_id: g for job, g in zip(pending, groups)}
    if submitted is not None:
        submitted(pending)
    try:
        for job in submitit.helpers.as_completed(pending, poll_frequency=POLL_S):
            try:
                yield from job.result()
            except Exception as err:  # noqa: BLE001 - submitit's FailedJobError, UncompletedJobError, ...
                why = f"its Slurm job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err) else err!r}"
                why += f" (logs: {job.paths.stderr})"
                for task in jobs[job.job_id]:
                    yield lost(task, inside.devices[0], why)
    finally:
        for job in pending:
            if not job.done():
                job.cancel(check=False)
