"""Toy distributions with known modes: the 2-D ring, the tilted 3-D ring and the 5x5 grid.

Each exposes its mode centres and per-mode standard deviation so that the ring metrics
(`analysis.ring_metrics`) can score samples against the truth. Sampling is driven by an
explicit ``torch.Generator``, so a seed reproduces the same points on any machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from core import streams


@dataclass(frozen=True, eq=False)
class MixtureDataset:
    """Equal-weight Gaussian mixture: ``x = centres[k] + noise_matrix @ eps``, eps ~ N(0, I).

    ``std`` is the per-mode standard deviation the metrics use for "high quality"
    (within 3 std of the nearest centre).
    """

    name: str
    centres: Tensor
    std: float
    noise_matrix: Tensor
    kind: str = "toy"
    train_size: int = 60_000

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.centres.shape[1],)

    @property
    def n_modes(self) -> int:
        return self.centres.shape[0]

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        """``n`` points ``(n, d)``: a uniformly chosen mode plus Gaussian noise."""
        k = torch.randint(self.n_modes, (n,), generator=gen)
        eps = torch.randn(n, self.centres.shape[1], generator=gen)
        return self.centres[k] + eps @ self.noise_matrix.T

    def train_set(self, seed: int) -> Tensor:
        """The fixed training set of run seed ``seed`` (``train_size`` points)."""
        return self.sample(self.train_size, streams.generator(seed, "train-set"))


def ring_centres(modes: int = 8, radius: float = 2.0) -> Tensor:
    """``modes`` points evenly spaced on a circle of ``radius``, the first on the x-axis."""
    angles = 2 * math.pi * torch.arange(modes, dtype=torch.float32) / modes
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1)


def ring2d() -> MixtureDataset:
    """8 Gaussians (std 0.2) evenly spaced on a circle of radius 2 (the paper's ring)."""
    return MixtureDataset("ring2d", ring_centres(), 0.2, 0.2 * torch.eye(2))


def ring3d(tilt: float = math.pi / 3, z_std: float = 0.1) -> MixtureDataset:
    """The paper's 3-D ring: ``ring2d`` in the x-y plane with N(0, z_std) noise along z,
    rotated by ``tilt`` about the x-axis. Centres are the tilted circle's points."""
    c, s = math.cos(tilt), math.sin(tilt)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    flat = torch.cat([ring_centres(), torch.zeros(8, 1)], 1)
    return MixtureDataset("ring3d", flat @ rot.T, 0.2, rot @ torch.diag(torch.tensor([0.2, 0.2, z_std])))


def grid() -> MixtureDataset:
    """25 Gaussians (std 0.05) on the 5x5 grid {-4, -2, 0, 2, 4}^2 (VEEGAN/PacGAN's grid)."""
    ticks = torch.arange(-4.0, 5.0, 2.0)
    return MixtureDataset("grid", torch.cartesian_prod(ticks, ticks), 0.05, 0.05 * torch.eye(2))
