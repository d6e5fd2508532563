"""Whole training steps as CUDA graphs: capture one stacked generator step once, replay it.

On a GPU the small networks of this harness make a step host-bound: hundreds of kernel
launches of microseconds each, with the device idle in between. `CapturedStep` records
everything one generator step does (real batches drawn from each run's index stream, noise,
every forward and backward pass, the optimisers' updates, weight clipping, and the step's
diagnostics written into the trainer's trace at a device-side step index) into one CUDA
graph, which `replay` launches as a unit.

What makes a replay equal an eager step:
- on CUDA the training streams (noise, batch indices, WGAN-GP's mixing weights) are
  counter-based (`core.counter`): every run's numbers of a draw in a few kernels, each
  run's counter a device tensor the graph advances in place, so each replay draws the
  numbers the next eager step would have drawn and the states stay exact for checkpoints;
  any ``torch.Generator`` a plugin's stream still uses is registered with the graph
  (``register_generator_state``);
- the optimisers are built ``capturable`` on CUDA (their step counters live on the device);
- the kernel math avoids operations that allocate or synchronise while capturing (the
  Cholesky solve uses triangular solves on CUDA, see `objectives.kernels`);
- nothing inside a step reads a value back to the host: the trainer checks divergence
  every ``CHECK_EVERY`` steps, outside the graph.

Capture needs warm-up steps first (lazy initialisation of cuBLAS handles and optimiser
state, on a side stream, as the PyTorch documentation prescribes); these are ordinary
training steps. When capture fails (a plugin objective that synchronises, an old torch),
the trainer says so in one line and goes on eagerly from a freshly built state
(`engine.trainer.Trainer`): a failed capture can leave random generators unusable.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.trainer import Trainer

WARMUP_STEPS = 3  # eager steps on a side stream before capture


class CaptureError(RuntimeError):
    """The step could not be captured; ``str(err)`` says why in one line."""


def can_capture(device: torch.device) -> bool:
    """Whether this torch build and ``device`` support graphed steps with per-run generators."""
    return device.type == "cuda" and hasattr(torch.cuda.CUDAGraph, "register_generator_state")


class CapturedStep:
    """One generator step of ``trainer``'s stack, captured; `replay` performs the next step."""

    def __init__(self, trainer: Trainer):
        if not can_capture(trainer.device):
            raise CaptureError("this torch build cannot register per-run generators with a CUDA graph")
        self.step_index = torch.zeros((), dtype=torch.long, device=trainer.device)
        self.graph = torch.cuda.CUDAGraph()
        for gen in trainer.random_generators():
            self.graph.register_generator_state(gen)
        per_step = trainer.objective.batches_per_step
        torch.cuda.synchronize(trainer.device)
        try:
            with torch.cuda.graph(self.graph):
                with trainer.autocast():
                    diag = trainer.objective.step(trainer.batches(per_step))
                row = torch.stack([d.to(trainer.trace.dtype) for d in diag.values()], -1).unsqueeze(0)
                trainer.trace.index_copy_(0, self.step_index.view(1), row)
                self.step_index.add_(1)
        except Exception as err:  # noqa: BLE001 - any failure to capture falls back to eager steps
            raise CaptureError(" ".join(f"{type(err).__name__}: {err}".split())[:300]) from err
        self.aligned_to: int | None = None

    def replay(self, step: int) -> None:
        """Perform generator step ``step`` (0-based) of the stack."""
        if self.aligned_to != step:  # first replay, or after the trainer moved (resume)
            self.step_index.fill_(step)
        self.graph.replay()
        self.aligned_to = step + 1


def warmup_stream(device: torch.device) -> torch.cuda.Stream:
    """A side stream that has seen everything queued so far on the current stream."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    return stream
