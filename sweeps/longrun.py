"""Long runs: train one stack with checkpoints, metrics during training and a live view.

`StackRun` wraps the engine's `engine.Trainer` for every command that trains
(`sweeps.worker.run_task` for the sweeps, `sweeps.train`):

- **Checkpoints** (``--checkpoint-minutes``, default 10, and/or ``--checkpoint-steps``):
  the trainer's whole state (`engine.Trainer.state_dict`: networks, optimisers, every
  random stream, step, trace, snapshots, divergence state), the metrics over steps so
  far and the live view's position go to one file per stack (`store.stack_checkpoint`),
  written atomically. A rerun of the same command finds it
  (its name hashes the members' configuration keys), says from which step it resumes,
  and ends with the same samples, bit for bit, as a run never stopped: training in
  pieces is training in one go (`engine.Trainer.train` checks divergence at fixed steps).
  One more checkpoint is written when training ends (if any was written before), so a
  kill while scoring does not retrain; the checkpoint is removed once the records are
  written. A checkpoint that cannot be read, differs from its digest (a damaged byte
  torch would load without a word, `store.checkpoints`), or that another configuration,
  device or torch version wrote, is ignored with one line and training starts at step 0.
- **Metrics over steps** (``--eval-every N``): every N steps, at step 0 and at the end,
  ``--eval-samples`` samples per run from a fixed noise stream of their own
  (`core.streams` role "evaluation") are scored like the final samples (ring metrics, or
  FID/KID/precision/recall on images); sampling puts the generator's batch-norm buffers
  back, so training with and without evaluations gives identical samples.
- **Live view** (``--tensorboard``): one TensorBoard run per stacked run, in its record's
  live folder (`store.live_dir`, copied into the record as ``tensorboard/`` at the end):
  the mean of each diagnostic over every ``--log-every`` steps (``train/<name>``), the
  metrics over steps (``eval/<name>``) and a sample figure every ``--images-every`` steps.
  Off by default; off, nothing is read back from the device beyond the divergence checks.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import store
from cli.options import OPTIONS
from engine import RunConfig, Trainer
from engine.trainer import CHECK_EVERY

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class LongRun:
    """How a stack is checkpointed, evaluated and shown while it trains (0 = never)."""

    checkpoint_minutes: float = OPTIONS["checkpoint_minutes"].default  # the options' defaults
    checkpoint_steps: int = OPTIONS["checkpoint_steps"].default
    eval_every: int = OPTIONS["eval_every"].default
    eval_samples: int = OPTIONS["eval_samples"].default
    tensorboard: bool = False
    log_every: int = OPTIONS["log_every"].default
    images_every: int = OPTIONS["images_every"].default

    @property
    def checkpoints(self) -> bool:
        return self.checkpoint_minutes > 0 or self.checkpoint_steps > 0


def long_run_from_args(args: argparse.Namespace) -> LongRun:
    """The `LongRun` of the parsed long-run options (`cli.options`, checked there)."""
    return LongRun(args.checkpoint_minutes, args.checkpoint_steps, args.eval_every, args.eval_samples,
                   args.tensorboard, args.log_every, args.images_every)


OverSteps = Callable[[np.ndarray, int], dict[str, Any]]  # (samples of run r, r) -> metrics


def log_line(text: str) -> None:
    """One line on stderr, above a progress bar if one is drawn."""
    tqdm.write(text, file=sys.stderr)


class StackRun:
    """One stack trained to its end with the options of a `LongRun` (see the module
    docstring). ``live[r]`` is run r's TensorBoard folder (None: not shown),
    ``evaluate(samples, r)`` scores run r's samples during training, ``view`` draws the
    live view's sample figures."""

    def __init__(self, configs: Sequence[RunConfig], device: str | torch.device, options: LongRun = LongRun(),
                 checkpoint: Path | None = None, live: Sequence[Path | None] = (),
                 evaluate: OverSteps | None = None, view: SampleView | None = None,
                 snapshot_steps: Sequence[int] = (), log: Callable[[str], None] = log_line):
        self.configs, self.device, self.options = list(configs), device, options
        self.checkpoint = checkpoint if options.checkpoints else None
        self.evaluate = evaluate if options.eval_every else None
        self.view, self.log, self.snapshot_steps = view, log, snapshot_steps
        self.trainer = Trainer(self.configs, device, snapshot_steps=snapshot_steps)
        self.curves: list[list[dict[str, Any]]] = [[] for _ in self.configs]
        self.logged_to = 0  # diagnostics logged to the live view up to this step
        self.saved = False  # a checkpoint of this stack exists
        self.resumed_from = self._resume()
        if not options.tensorboard:  # a view a killed run left, which this run will not continue
            for p in live:
                if p is not None:
                    shutil.rmtree(p, ignore_errors=True)
        self.writers = [self._writer(p) if p is not None else None for p in live] if options.tensorboard else []

    # --- checkpoints ----------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this stack."""
        return {"format": CHECKPOINT_FORMAT, "members": [c.key() for c in self.configs],
                "torch": str(torch.__version__), "device": self.trainer.device.type}

    def _state(self) -> dict[str, Any]:
        return {**self._identity(), "trainer": self.trainer.state_dict(), "curves": self.curves,
                "logged_to": self.logged_to}

    def _resume(self) -> int | None:
        """Load the stack's checkpoint if there is a usable one; the step it resumes from."""
        if self.checkpoint is None:
            return None
        try:
            state = store.load_checkpoint(self.checkpoint)
            if state is None:
                return None
            wrong = [k for k, v in self._identity().items() if state.get(k) != v]
            if wrong:
                raise store.DamagedCheckpoint(f"was written for another {', '.join(wrong)}")
            self.trainer.load_state_dict(state["trainer"])
            self.curves, self.logged_to = [list(c) for c in state["curves"]], int(state["logged_to"])
        except (store.DamagedCheckpoint, KeyError, TypeError, ValueError, RuntimeError) as err:
            why = str(err) if isinstance(err, store.DamagedCheckpoint) else f"does not fit ({type(err).__name__})"
            self.log(f"ignoring the checkpoint {self.checkpoint}: it {why}; training from step 0")
            self.trainer = Trainer(self.configs, self.device, snapshot_steps=self.snapshot_steps)
            self.curves, self.logged_to = [[] for _ in self.configs], 0
            return None
        self.saved = True
        step = self.trainer.steps_done
        self.log(f"resuming from the checkpoint at step {step:,} of {self.configs[0].steps:,}: {self.checkpoint}")
        return step

    def save(self) -> None:
        store.save_checkpoint(self.checkpoint, self._state())
        self.saved = True

    def provenance(self) -> dict[str, Any]:
        """What a record says about how its run trained here: the step it resumed from
        (when it did) and how often it was evaluated."""
        out: dict[str, Any] = {}
        if self.resumed_from is not None:
            out["resumed_from_step"] = self.resumed_from
        if self.evaluate is not None:
            out["eval_every"], out["eval_samples"] = self.options.eval_every, self.options.eval_samples
        return out

    def discard_checkpoint(self) -> None:
        """Remove the checkpoint (call once the stack's records are written)."""
        if self.checkpoint is not None:
            store.remove_checkpoint(self.checkpoint)

    # --- training -------------------------------------------------------------------------

    def _next_stop(self) -> int:
        """The next step at which something is due (an evaluation, a log, a checkpoint, a
        check of the clock), or the end."""
        o, done, total = self.options, self.trainer.steps_done, self.configs[0].steps
        every = [CHECK_EVERY if o.checkpoint_minutes > 0 and self.checkpoint else 0, o.checkpoint_steps,
                 o.eval_every if self.evaluate else 0,
                 *((o.log_every, o.images_every) if any(self.writers) else ())]
        return min([total, *((done // k + 1) * k for k in every if k > 0)])

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        """Train to the end (or until every run has diverged), doing what is due on the way."""
        o, trainer = self.options, self.trainer
        if trainer.steps_done == 0:
            self._evaluate()
            self._log_view()
        last_save = time.monotonic()
        try:
            while not trainer.done:
                trainer.train(self._next_stop() - trainer.steps_done, progress)
                step = trainer.steps_done
                if self.evaluate and (step % o.eval_every == 0 or trainer.done):
                    self._evaluate()
                if any(self.writers):
                    if step % o.log_every == 0 or trainer.done:
                        self._log_diagnostics()
                    if step % o.images_every == 0 or trainer.done:
                        self._log_view()
                if self.checkpoint is not None and not trainer.done and (
                        (o.checkpoint_steps and step % o.checkpoint_steps == 0)
                        or (o.checkpoint_minutes and time.monotonic() - last_save >= 60 * o.checkpoint_minutes)):
                    self.save()
                    last_save = time.monotonic()
            if self.saved and self.resumed_from != trainer.steps_done:
                self.save()  # training is done: a kill while scoring resumes here
        finally:
            self.close()

    def close(self) -> None:
        for w in self.writers:
            if w is not None:
                w.close()

    # --- metrics over steps and the live view ------------------------------------------------

    def _evaluate(self) -> None:
        if self.evaluate is None:
            return
        step = self.trainer.steps_done
        samples = self.trainer.sample(self.options.eval_samples, "evaluation", keep_state=True).numpy()
        for r in range(len(self.configs)):
            if self.trainer.diverged_at[r] is not None:
                continue
            metrics = self.evaluate(samples[r], r)  # plain Python values: checkpoints load them weights-only
            row = {"step": step, **{k: v.item() if isinstance(v, np.generic) else v for k, v in metrics.items()}}
            self.curves[r].append(row)
            self._scalars(r, "eval", {k: v for k, v in row.items() if k != "step"}, step)

    def curve(self, r: int) -> pd.DataFrame | None:
        """Run r's metrics over steps (one row per evaluation), None without evaluations."""
        return pd.DataFrame(self.curves[r]) if self.evaluate is not None else None

    def _writer(self, path: Path) -> Any:
        from torch.utils.tensorboard import SummaryWriter
        if self.resumed_from is None:
            shutil.rmtree(path, ignore_errors=True)  # a killed run's view without a checkpoint to go with it
        # purge_step hides what a killed run logged after its checkpoint
        return SummaryWriter(str(path), purge_step=self.resumed_from or None)

    def _scalars(self, r: int, group: str, values: dict[str, Any], step: int) -> None:
        writer = self.writers[r] if r < len(self.writers) else None
        if writer is None:
            return
        for name, value in values.items():
            if isinstance(value, (int, float, np.number)) and math.isfinite(float(value)):
                writer.add_scalar(f"{group}/{name}", float(value), step)

    def _log_diagnostics(self) -> None:
        """Each run's mean of every diagnostic over the steps since the last log."""
        trainer, start, stop = self.trainer, self.logged_to, self.trainer.steps_done
        if trainer.trace is None or stop <= start:
            return
        rows = trainer.trace[start:stop].cpu().numpy()  # (steps, R, n_diag)
        with warnings.catch_warnings():  # a diverged run's all-NaN window has no mean: not logged
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(np.where(np.isfinite(rows), rows, np.nan), axis=0)
        for r in range(len(self.configs)):
            self._scalars(r, "train", dict(zip(trainer.diag_names, means[r].tolist())), stop)
        self.logged_to = stop

    def _log_view(self) -> None:
        if not any(self.writers) or self.view is None:
            return
        step = self.trainer.steps_done
        samples = self.trainer.sample(self.view.samples, "view", keep_state=True).numpy()
        for r, writer in enumerate(self.writers):
            if writer is not None:
                self.view(writer, "samples", samples[r], r, step)
                writer.flush()


class SampleView:
    """How the live view draws a run's samples: a grid of 64 images for image data, 1,000
    samples over as many fresh data points for toy data (`analysis.figures.scatter_panel`)."""

    def __init__(self, dataset: Any, seeds: Sequence[int]):
        self.images = getattr(dataset, "kind", "") == "image"
        self.samples = 64 if self.images else 1_000
        self.seeds = list(seeds)
        if not self.images:
            from metrics.ring import reference_samples
            self.reference = {s: reference_samples(dataset, s, self.samples) for s in dict.fromkeys(seeds)}

    def __call__(self, writer: Any, tag: str, samples: np.ndarray, r: int, step: int) -> None:
        if self.images:
            from torchvision.utils import make_grid
            x = torch.from_numpy(np.nan_to_num(samples, posinf=1.0, neginf=-1.0)).add(1).div(2).clamp(0, 1)
            writer.add_image(tag, make_grid(x, nrow=8), step)
            return
        import matplotlib.pyplot as plt

        from analysis.figures import scatter_panel
        fig = plt.figure(figsize=(3, 3))
        ax = fig.add_subplot(projection="3d" if samples.shape[1] == 3 else None)
        scatter_panel(ax, self.reference[self.seeds[r]], samples)
        ax.set_title(f"step {step:,}", fontsize=9)
        writer.add_figure(tag, fig, step)  # closes the figure
