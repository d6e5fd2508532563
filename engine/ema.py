"""An exponential moving average of a stack's generator weights (``--ema DECAY``, `RunConfig.ema`).

After every generator step each parameter of the average moves towards the generator's:
``ema = decay * ema + (1 - decay) * weight`` (as StudioGAN and most GAN benchmarks report
an EMA generator beside the raw one). Stacked parameters hold run r in slice r of dim 0
(`models.stacked`) and the update is elementwise, so every run gets exactly the average of
its own weights: runs stay independent, and zero padding (narrower or lower-dimensional
runs) stays zero.

Buffers (batch norm's running statistics, width masks) are copied from the generator, not
averaged: running statistics estimate the activations of the network that computed them,
and an average of them is not the statistics of the averaged weights; copying is what
StudioGAN does. Samples here are drawn with batch norm in training mode (statistics of
each pass, see `engine.trainer.draw_samples`), so the choice does not change them.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn


def check_decay(decay: float) -> float:
    """``decay`` as a float in [0, 1), else `ValueError` (0 means no average)."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
        raise ValueError(f"ema must be a decay in [0, 1) (0 = off), got {decay!r}")
    return float(decay)


class GeneratorEMA:
    """The moving average of ``generator`` (a stacked network) with ``decay``; ``model`` is a
    network like ``generator`` holding the average, for sampling."""

    def __init__(self, generator: nn.Module, decay: float):
        self.decay = check_decay(decay)
        self.model = copy.deepcopy(generator).requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        """One step of the average towards ``generator``'s current weights; buffers copied."""
        torch._foreach_lerp_(self._params, [p.detach() for p in generator.parameters()], 1.0 - self.decay)
        for mine, theirs in zip(self._buffers, generator.buffers()):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        self.model.load_state_dict(state)
