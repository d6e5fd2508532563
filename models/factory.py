"""One small factory that builds every network an objective needs, from one config.

Objectives never pick layer types: they ask the factory for a role (``generator``,
``critic`` with some output size, ``decoder`` from some code size) and the configured
architecture answers. Architectures register themselves by name, so the convolutional
ones plug in exactly like the MLP one and every objective runs on every architecture.

Each network is built for R stacked runs (see `models.stacked`); run r is initialised from
its own seed and the network's role, so a run's initial weights do not depend on which
other runs share its stack.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from core import streams
from models.stacked import StackedMLP, WidthGroups


@dataclass(frozen=True)
class ArchConfig:
    """Network sizes shared by every objective.

    ``width``/``depth``/``activation``/``out_activation`` shape the generator;
    ``critic_width``/``critic_depth`` shape the discriminator, projector, encoder and
    decoder (the paper uses 100-100 for all of them on the ring).
    """

    arch: str = "mlp"
    width: int = 100
    depth: int = 2
    activation: str = "relu"
    out_activation: str = "identity"
    critic_width: int = 100
    critic_depth: int = 2


class Architecture(Protocol):
    """Builds stacked networks for R runs; ``gens`` holds one seeded generator per run."""

    def generator(self, cfg: ArchConfig, noise_dims: Sequence[int], x_shape: tuple[int, ...],
                  gens: Sequence[torch.Generator], widths: Sequence[int], pad_widths: bool) -> nn.Module: ...

    def critic(self, cfg: ArchConfig, x_shape: tuple[int, ...], out_dim: int,
               gens: Sequence[torch.Generator], batch_norm: bool = True) -> nn.Module: ...

    def decoder(self, cfg: ArchConfig, in_dim: int, x_shape: tuple[int, ...],
                gens: Sequence[torch.Generator]) -> nn.Module: ...


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(name: str) -> Callable[[type], type]:
    """Class decorator: make an `Architecture` available as ``ArchConfig(arch=name)``."""
    def deco(cls: type) -> type:
        ARCHITECTURES[name] = cls()
        return cls
    return deco


@register_architecture("mlp")
class MLPArchitecture:
    """Fully connected networks for toy data (and flattened images)."""

    def generator(self, cfg, noise_dims, x_shape, gens, widths, pad_widths):
        def stacked(runs: Sequence[int]) -> StackedMLP:  # these runs, padded to the widest of them
            net = StackedMLP(len(runs), (max(noise_dims),), [max(widths[r] for r in runs)] * cfg.depth, x_shape,
                             cfg.activation, cfg.out_activation, widths=[widths[r] for r in runs])
            net.reset([gens[r] for r in runs], [noise_dims[r] for r in runs])
            return net
        if pad_widths or len(set(widths)) == 1:
            return stacked(range(len(gens)))
        groups = [[r for r, w in enumerate(widths) if w == width] for width in dict.fromkeys(widths)]
        return WidthGroups([stacked(g) for g in groups], groups)

    def critic(self, cfg, x_shape, out_dim, gens, batch_norm=True):  # no batch norm in the MLPs anyway
        net = StackedMLP(len(gens), x_shape, [cfg.critic_width] * cfg.critic_depth, (out_dim,), "relu")
        net.reset(gens)
        return net

    def decoder(self, cfg, in_dim, x_shape, gens):
        net = StackedMLP(len(gens), (in_dim,), [cfg.critic_width] * cfg.critic_depth, x_shape, "relu")
        net.reset(gens)
        return net


def pads_widths(device: torch.device) -> bool:
    """Whether a stack's generators of several widths share layers padded to the widest
    (on a GPU, whose time goes to kernel launches) rather than one stacked network per
    width (on a CPU, whose time goes to arithmetic: in the ring grid's stack of widths 20,
    100 and 200, padding made the generator's arithmetic 2.3x what its runs need); see
    `models.stacked`."""
    return device.type != "cpu"


class NetFactory:
    """Builds the networks of R stacked runs (seeds ``seeds``, noise sizes ``noise_dims``)."""

    def __init__(self, cfg: ArchConfig, x_shape: Sequence[int], noise_dims: Sequence[int],
                 seeds: Sequence[int], device: torch.device | str = "cpu", widths: Sequence[int] | None = None):
        if cfg.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {cfg.arch!r}; choose from {sorted(ARCHITECTURES)}")
        if len(noise_dims) != len(seeds):
            raise ValueError("need one noise dimension per run")
        self.cfg, self.x_shape = cfg, tuple(x_shape)
        self.noise_dims, self.seeds = list(noise_dims), list(seeds)
        self.widths = list(widths) if widths is not None else [cfg.width] * len(self.seeds)
        if len(self.widths) != len(self.seeds):
            raise ValueError("need one generator width per run")
        self.device = torch.device(device)
        self.arch = ARCHITECTURES[cfg.arch]

    @property
    def runs(self) -> int:
        return len(self.seeds)

    def _gens(self, role: str) -> list[torch.Generator]:
        return streams.generators(self.seeds, f"init/{role}")

    def generator(self) -> nn.Module:
        """The generator G: noise ``(R, B, max noise dim)`` -> samples ``(R, B, *x_shape)``;
        run r's hidden width is ``widths[r]`` (held as `pads_widths` says)."""
        net = self.arch.generator(self.cfg, self.noise_dims, self.x_shape, self._gens("generator"), self.widths,
                                  pad_widths=pads_widths(self.device))
        return net.to(self.device)

    def critic(self, out_dim: int, role: str = "critic", batch_norm: bool = True) -> nn.Module:
        """A network from data space to ``out_dim`` features (discriminator, projector,
        encoder); ``batch_norm=False`` asks for one without batch norm where the
        architecture would have it."""
        return self.arch.critic(self.cfg, self.x_shape, out_dim, self._gens(role), batch_norm).to(self.device)

    def decoder(self, in_dim: int, role: str = "decoder") -> nn.Module:
        """A network from an ``in_dim`` code back to data space (MMD-GAN's autoencoder)."""
        return self.arch.decoder(self.cfg, in_dim, self.x_shape, self._gens(role)).to(self.device)
