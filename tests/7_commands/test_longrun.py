"""Long runs: a run or a stack killed after a checkpoint resumes to the same samples, bit for
bit; a damaged checkpoint is ignored with one line; evaluations during training leave
training untouched; TensorBoard event files open in tensorboard's reader with the
expected tags."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import store
from engine import RunConfig, Trainer
from sweeps import stability, train
from sweeps.longrun import LongRun, StackRun

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
pytestmark = pytest.mark.usefixtures("isolated_registry")


def kill_after_first_checkpoint(module: str, argv: list[str], where: Path) -> None:
    """Run ``python -m module argv`` and SIGKILL it as soon as a checkpoint appears below ``where``."""
    proc = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(where.rglob(".checkpoints/[!.]*.pt")):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before its first checkpoint could be caught"
    assert list(where.rglob(".checkpoints/[!.]*.pt")), "no checkpoint was written"


def resumed_step(err: str) -> int:
    found = re.findall(r"resuming from the checkpoint at step (\d+) of", err)
    assert len(found) == 1, err
    return int(found[0])


IMAGE_RUN = ["--models", "gram", "--dataset", "mnist5k", "--arch", "dcgan", "--widths", "16", "--batch", "64",
             "--noise-dims", "128", "--noise", "uniform", "--steps", "60", "--samples", "200",
             "--checkpoint-steps", "20"]


def test_a_killed_image_run_resumes_from_its_checkpoint_to_the_same_samples(tmp_path, capsys):
    """sweeps.train, mnist5k DCGAN GRAM-net: killed after its first checkpoint (step 20 of
    60), rerun: it says where it resumes and ends with the uninterrupted run's samples,
    bit for bit; the checkpoint is gone once the record is written."""
    assert train.main([*IMAGE_RUN, "--out", str(tmp_path / "whole")]) == 0
    whole, = store.record_dirs(tmp_path / "whole")
    killed = tmp_path / "killed" / whole.relative_to(tmp_path / "whole")  # the same configuration's folder
    kill_after_first_checkpoint("sweeps.train", [*IMAGE_RUN, "--out", str(tmp_path / "killed")], tmp_path)
    assert not list(store.record_dirs(tmp_path / "killed"))
    capsys.readouterr()
    assert train.main([*IMAGE_RUN, "--out", str(tmp_path / "killed")]) == 0
    step = resumed_step(capsys.readouterr().err)
    assert step in (20, 40)
    assert (killed / "samples.npy").read_bytes() == (whole / "samples.npy").read_bytes()
    record = store.read(killed)
    assert record.status == "ok" and record.run["resumed_from_step"] == step
    assert "resumed_from_step" not in store.read(whole).run
    assert not list(tmp_path.rglob(".checkpoints/*"))
    assert not list(tmp_path.rglob(".tmp-*"))


STACK = ["--models", "gram", "--preset", "smoke", "--noise-dims", "2,4,8,16", "--widths", "20", "--steps", "600",
         "--checkpoint-steps", "200", "--samples", "2000", "--no-figures"]  # one stack of 4 ring runs


def test_a_killed_stability_stack_resumes_from_its_checkpoint_to_the_same_samples(tmp_path, capsys):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert stability.main([*STACK, "--out", str(whole)]) == 0
    kill_after_first_checkpoint("sweeps.stability", [*STACK, "--out", str(killed)], killed)
    assert not list(store.record_dirs(killed))
    capsys.readouterr()
    assert stability.main([*STACK, "--out", str(killed)]) == 0
    assert resumed_step(capsys.readouterr().err) in (200, 400)
    cells = sorted(d.relative_to(whole) for d in store.record_dirs(whole))
    assert len(cells) == 4
    for cell in cells:
        assert (killed / cell / "samples.npy").read_bytes() == (whole / cell / "samples.npy").read_bytes()
    assert not list(killed.rglob(".checkpoints/*")) and not list(killed.rglob(".tmp-*"))


RING = ["--models", "gram", "--steps", "30", "--batch", "64", "--widths", "20", "--samples", "500",
        "--checkpoint-steps", "10"]


@pytest.mark.parametrize("damage", ["garbage", "another configuration's"])
def test_an_unusable_checkpoint_is_ignored_with_one_line(damage, tmp_path, capsys):
    assert train.main([*RING, "--out", str(tmp_path)]) == 0
    out, = store.record_dirs(tmp_path)
    reference = (out / "samples.npy").read_bytes()
    cfg = RunConfig(model="gram", steps=30, batch=64, width=20, n_samples=500)
    checkpoint = store.stack_checkpoint(out, [cfg.key()])
    if damage == "garbage":
        checkpoint.parent.mkdir()
        checkpoint.write_bytes(b"not a checkpoint")
    else:  # a real checkpoint, of a run of 2 more steps, under this run's name
        other = StackRun([cfg.replace(steps=32)], "cpu", LongRun(checkpoint_steps=10),
                         store.stack_checkpoint(out, [cfg.replace(steps=32).key()]))
        other.trainer.train(10)
        other.save()
        other.checkpoint.rename(checkpoint)
    capsys.readouterr()
    assert train.main([*RING, "--out", str(tmp_path), "--force"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "checkpoint" in line]
    why = "cannot be read" if damage == "garbage" else "was written for another members"
    assert len(lines) == 1 and "ignoring the checkpoint" in lines[0] and why in lines[0], lines
    assert (out / "samples.npy").read_bytes() == reference and not checkpoint.exists()


def test_evaluations_during_training_leave_training_untouched():
    """A DCGAN stack (batch norm: every forward pass moves its running statistics) trained
    with evaluations every 2 steps ends with the samples, generator weights and buffers
    of the same stack trained without; the curves hold steps 0, 2, 4, 6."""
    cfgs = [RunConfig(model="gan", dataset="mnist5k", arch="dcgan", width=16, batch=16, noise_dim=8, steps=6,
                      n_samples=50, seed=s) for s in (0, 1)]
    plain = Trainer(cfgs)
    plain.train()
    seen = []

    def mean_pixel(samples, r):
        seen.append(r)
        return {"mean": float(samples.mean())}
    evaluated = StackRun(cfgs, "cpu", LongRun(checkpoint_minutes=0, eval_every=2, eval_samples=40),
                         evaluate=mean_pixel)
    evaluated.run()
    for a, b in zip(plain.outcomes(), evaluated.trainer.outcomes()):
        assert np.array_equal(a.samples, b.samples)
        assert a.generator_state.keys() == b.generator_state.keys()
        assert all(torch.equal(a.generator_state[k], b.generator_state[k]) for k in a.generator_state)
    assert any("running_mean" in k for k in a.generator_state)
    assert evaluated.curve(1)["step"].tolist() == [0, 2, 4, 6] and len(seen) == 8
    assert evaluated.curve(0)["mean"].nunique() == 4  # the generator moved between evaluations


def test_tensorboard_event_files_hold_each_runs_tags(tmp_path):
    """Two ring runs in one stack with --tensorboard and --eval-every: each record's
    tensorboard/ opens in tensorboard's reader with the diagnostics and metrics as scalars
    and the sample figures, and the runs' samples equal those of the same sweep without
    either option."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out, plain = tmp_path / "out", tmp_path / "plain"
    argv = ["--models", "gram", "--preset", "smoke", "--noise-dims", "2", "--widths", "20", "--seeds", "0,1",
            "--samples", "1000", "--no-figures"]
    assert stability.main([*argv, "--tensorboard", "--log-every", "10", "--images-every", "20", "--eval-every", "20",
                           "--eval-samples", "500", "--out", str(out)]) == 0
    assert stability.main([*argv, "--out", str(plain)]) == 0
    runs = sorted(store.record_dirs(out / "stability"))
    assert len(runs) == 2
    for run in runs:
        twin = plain / run.relative_to(out)
        assert (run / "samples.npy").read_bytes() == (twin / "samples.npy").read_bytes()
        assert (run / "generator.pt").read_bytes() == (twin / "generator.pt").read_bytes()
        record = store.read(run)  # checksums hold: tensorboard/ is not part of them
        assert "tensorboard" not in record.files and "metrics_over_steps.csv" in record.files
        acc = EventAccumulator(str(run / "tensorboard"))
        acc.Reload()
        tags = acc.Tags()
        diagnostics = list(store.load_trace(run).columns)
        assert {f"train/{d}" for d in diagnostics} | {"eval/hq_fraction", "eval/mmd2"} <= set(tags["scalars"])
        assert [e.step for e in acc.Scalars("train/loss_g")] == [10, 20, 30, 40]
        assert [e.step for e in acc.Scalars("eval/hq_fraction")] == [0, 20, 40]
        assert [e.step for e in acc.Images("samples")] == [0, 20, 40]
        curve = store.load_curves(run)
        assert curve["step"].tolist() == [0, 20, 40]
        assert [e.value for e in acc.Scalars("eval/hq_fraction")] == pytest.approx(curve["hq_fraction"].tolist())
    assert not list(out.rglob(".live-*"))
