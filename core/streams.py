"""Every random stream of the harness, derived from ``(run seed, role)`` in one place.

The seeds of a study are meant to be independent draws, so no stream of one seed may be a
stream of another. Each stream's torch seed comes from `numpy.random.SeedSequence` with
the run's seed as entropy and the role's name as spawn key: SeedSequence hashes both
into its pool (numpy, "Parallel random number generation"), so streams of different
seeds or roles are unrelated, whatever the seeds' values. Nothing else in the harness
does arithmetic on seeds; a new random stream is a new entry in `ROLES`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ROLES = {
    "train-set": "a toy data set's training points",
    "noise": "the generator's training noise",
    "batches": "the indices of real minibatches",
    "mixing": "WGAN-GP's interpolation weights between real and generated points",
    "samples": "a record's final samples",
    "probe": "the fixed noise of the exploding-samples check",
    "snapshots": "the fixed noise of training-process snapshots",
    "evaluation": "samples scored during training (metrics over steps)",
    "view": "samples drawn for the live TensorBoard view",
    "reference": "fresh true points the ring metrics compare against",
    "display": "true points drawn beside samples in figures",
    "init/generator": "the generator's initial weights",
    "init/discriminator": "GAN's discriminator's initial weights",
    "init/projector": "GRAM-net's projector's initial weights",
    "init/encoder": "MMD-GAN's encoder's initial weights",
    "init/decoder": "MMD-GAN's decoder's initial weights",
    "init/critic": "a critic's initial weights (WGAN-GP, plugins)",
}


def stream_seed(seed: int, role: str) -> int:
    """The 63-bit torch seed of run ``seed``'s stream for ``role`` (a key of `ROLES`, or an
    ``init/<name>`` role for a network a plugin objective adds)."""
    if role not in ROLES and not role.startswith("init/"):
        raise ValueError(f"unknown random stream role {role!r}; add it to core.streams.ROLES")
    if int(seed) < 0:
        raise ValueError(f"seeds are non-negative integers, got {seed}")
    state = np.random.SeedSequence(int(seed), spawn_key=tuple(role.encode())).generate_state(2, np.uint64)
    return int(state[0]) >> 1


def generator(seed: int, role: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``stream_seed(seed, role)``."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, role))


def generators(seeds: Sequence[int], role: str, device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One `generator` per run seed, for a stack of runs."""
    return [generator(s, role, device) for s in seeds]
