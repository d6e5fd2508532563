"""The Slurm backend through submitit's local executor (real job processes, real pickling):
a sweep through it stores the samples a local sweep stores, bit for bit; a job stopped by
the preemption signal once its stack has checkpointed is requeued, resumes from the
checkpoint and ends with an uninterrupted run's samples; bad options are refused."""
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import store
from engine import RunConfig
from sweeps import stability
from sweeps.longrun import LongRun
from sweeps.parallel import Placement
from sweeps.slurm import SlurmOptions, run_slurm
from sweeps.worker import Cell, Task, evaluate_samples, record_lost, run_task

pytest.importorskip("submitit")
pytestmark = pytest.mark.usefixtures("isolated_registry")

SMOKE = ["--models", "gram", "--preset", "smoke", "--noise-dims", "2,4", "--widths", "20", "--steps", "200",
         "--samples", "500", "--no-figures"]


def samples_by_cell(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p / "samples.npy").read_bytes() for p in store.record_dirs(root)}


def test_a_sweep_through_slurm_jobs_stores_the_samples_of_a_local_sweep(tmp_path):
    """Two stacks (--max-stack 1), one job each, submitted through submitit: same records,
    same samples as the loky backend; the job files and logs are under OUT/slurm-logs."""
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    assert stability.main([*SMOKE, "--max-stack", "1", "--out", str(local)]) == 0
    assert stability.main([*SMOKE, "--max-stack", "1", "--out", str(slurm), "--backend", "slurm",
                           "--slurm-cluster", "local", "--slurm-time", "10"]) == 0
    expected = samples_by_cell(local / "stability")
    assert len(expected) == 2 and samples_by_cell(slurm / "stability") == expected
    assert len(list((slurm / "slurm-logs").glob("*_0_log.err"))) == 2


def test_a_preempted_job_is_requeued_and_resumes_to_the_uninterrupted_samples(tmp_path):
    """A stack of two ring runs in one job, checkpointing every 50 steps: SIGUSR2 (what Slurm
    sends before a time limit or preemption) once a checkpoint exists; submitit calls the
    job's checkpoint(), requeues it, and the stack resumes from its checkpoint to the
    samples of the same stack trained without a stop, bit for bit."""
    configs = [RunConfig(model="gram", width=20, noise_dim=d, steps=1500, batch=64, n_samples=500) for d in (2, 4)]

    def task(root: Path) -> Task:
        cells = tuple(Cell(c, (("noise_dim", c.noise_dim),), root / f"setting/ring2d/gram/nz{c.noise_dim}/seed0")
                      for c in configs)
        every_50 = LongRun(checkpoint_minutes=0, checkpoint_steps=50)
        return Task("stability", cells, evaluate_samples, (), (0, 1), every_50)

    whole = task(tmp_path / "whole")
    assert [r["status"] for r in run_task(whole, "cpu")] == ["ok", "ok"]

    stopped = task(tmp_path / "stopped")
    checkpoint = store.stack_checkpoint(stopped.cells[0].path, [c.key() for c in configs])

    def preempt_after_a_checkpoint(jobs: list) -> None:
        deadline = time.time() + 240
        while not checkpoint.exists() and not jobs[0].done() and time.time() < deadline:
            time.sleep(0.02)
        assert checkpoint.exists() and not jobs[0].done(), "the job ended before its first checkpoint"
        # the job's process (the local executor's controller does not pass its _interrupt() on)
        job_process, = psutil.Process(jobs[0]._process.pid).children()
        job_process.send_signal(signal.SIGUSR2)

    placement = Placement(backend="slurm", slurm=SlurmOptions(time_min=10, logs=tmp_path / "logs", cluster="local"))
    rows = list(run_slurm(run_task, [stopped], placement, record_lost, submitted=preempt_after_a_checkpoint))
    assert [row["status"] for row in rows[0]] == ["ok", "ok"]
    log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*_log.out"))
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log
    for a, b in zip(whole.cells, stopped.cells):
        record = store.read(b.path)
        assert 0 < record.run["resumed_from_step"] < 1500 and record.run["resumed_from_step"] % 50 == 0
        assert np.array_equal(store.load_samples(a.path), store.load_samples(b.path))
    assert not checkpoint.exists()


@pytest.mark.parametrize("extra, message", [
    (["--slurm-time", "0"], "--slurm-time must be in"),
    (["--slurm-gpus", "-1"], "--slurm-gpus must be in"),
    (["--stacks-per-job", "0"], "--stacks-per-job must be in"),
    (["--devices", "cuda:0"], "--slurm-gpus N gives each job N GPUs"),
    ([], "needs Slurm's sbatch on PATH"),
])
def test_bad_slurm_options_are_refused_before_any_work(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    cluster = [] if message.startswith("needs") else ["--slurm-cluster", "local"]
    with pytest.raises(SystemExit) as exit_:
        stability.main([*SMOKE, "--out", str(tmp_path / "out"), "--backend", "slurm", *cluster, *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
