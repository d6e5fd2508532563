"""Counter-based random draws: every run's numbers of one draw in a few elementwise kernels.

On a GPU, drawing from one ``torch.Generator`` per run costs a kernel launch per run and
draw, and launches are what a step of these small networks is bound by. Here a number is
a hash of (run key, draw counter, position): all runs' numbers of a draw come from one
pass of some 30 to 50 elementwise kernels whatever the number of runs, and each run still has a
stream of its own (its key is `core.streams.stream_seed` of its seed and role), which does
not depend on which runs share its stack. The counter is a device tensor advanced in place,
so a CUDA graph that captured a draw draws fresh numbers on every replay, and it is the
stream's whole state (checkpoints). (Per-run generators cost a launch or two per run and
draw: fewer than this below some 15 runs, more in a GPU sweep's whole-grid stacks.)

The hash is the PCG hash (Jarzynski and Olano, "Hash Functions for GPU Rendering", JCGT
2020), a bijection of 32-bit words, computed in int64 so that no product overflows. Uniforms carry 24 bits,
normals come from Box-Muller. These are not the numbers a ``torch.Generator`` draws: the
trainer uses this on CUDA only, and the CPU keeps its generators (and its numbers).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

MASK = 0xFFFFFFFF


def _pcg(x: Tensor) -> Tensor:
    """The PCG hash of 32-bit words held in int64 (every product stays below 2^62)."""
    state = (x * 747796405 + 2891336453) & MASK
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & MASK
    return (word >> 22) ^ word


class CounterStream:
    """One stream per run key: run r's k-th number is ``pcg(pcg((lo_r + k) mod 2^32) ^ hi_r)``,
    a keyed bijection of its counter, so a run's numbers never repeat within 2^32 of them and
    do not depend on the other runs of its stack. A draw names, per run, the positions it
    wants (relative to the run's counter; the first dim is the run, or broadcasts over runs)
    and how many numbers it consumes (``sizes``, per run), by which each counter advances."""

    def __init__(self, keys: Sequence[int], device: torch.device | str):
        keys = torch.tensor([[k & MASK, (k >> 32) & MASK] for k in keys], dtype=torch.int64, device=device)
        self.state, self.hi = keys[:, 0].clone(), keys[:, 1].clone()  # (R,) counters (start at lo), keys

    def bits(self, positions: Tensor, sizes: Tensor | int) -> Tensor:
        """32-bit words (as int64), ``(R, *positions.shape[1:])``; advances each counter by ``sizes``."""
        shape = (-1, *[1] * (positions.dim() - 1))
        words = _pcg(_pcg((positions + self.state.view(shape)) & MASK) ^ self.hi.view(shape))
        self.state.add_(sizes).bitwise_and_(MASK)
        return words

    def uniform(self, positions: Tensor, sizes: Tensor | int, dtype: torch.dtype | None = None) -> Tensor:
        """Uniforms in (0, 1), 24 bits each."""
        return ((self.bits(positions, sizes) >> 8).to(dtype or torch.get_default_dtype()) + 0.5) * 2.0**-24

    def normal(self, positions: Tensor, sizes: Tensor | int, dtype: torch.dtype | None = None) -> Tensor:
        """Standard normals, Box-Muller on the uniforms at ``2 p`` and ``2 p + 1`` (each counter
        advances by ``2 sizes``)."""
        pairs = 2 * positions.unsqueeze(-1) + torch.arange(2, device=positions.device)
        u1, u2 = self.uniform(pairs, 2 * sizes, dtype).unbind(-1)
        return u1.log().mul_(-2).sqrt_().mul_(torch.cos(u2 * (2 * math.pi)))

    def integers(self, high: int, positions: Tensor, sizes: Tensor | int) -> Tensor:
        """Integers in [0, high) (modulo bias below high / 2^32)."""
        return self.bits(positions, sizes) % high

    def state_dict(self) -> Tensor:
        return self.state.clone()

    def load_state_dict(self, state: Tensor) -> None:
        self.state.copy_(state)  # in place: a captured CUDA graph keeps reading the same memory
