"""MMD-net / GMMN (Li et al. 2015; Dziugaite et al. 2015): no critic at all.

The generator minimises sqrt(MMD^2 + 1e-6) between generated and real batches, computed in
data space with a fixed Gaussian kernel (the sum over ``sigmas``).

Defaults and their sources (docs/defaults.md): toy and MNIST from JuliaGRAM
(scripts/predefined_args.jl), RMSprop with Flux's decay 0.9 (torch's default is 0.99) and
bandwidths that are standard deviations; image from the GMMN code's bandwidths
{2, 5, 10, 20, 40, 80}, which its kernel exp(-d^2 / (2 s)) takes as squared bandwidths:
here as standard deviations sqrt(s).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from objectives import kernels
from objectives.base import Diagnostic, Objective
from objectives.registry import register


@register
class MMDNet(Objective):
    name = "mmdnet"
    display_name = "MMD-net"
    defaults = {
        "toy": {"lr": 1e-3, "optimizer": "rmsprop", "rmsprop_decay": 0.9, "sigmas": (1.0,)},
        "image": {"lr": 1e-4, "optimizer": "adam", "beta1": 0.5, "beta2": 0.999,
                  "sigmas": tuple(math.sqrt(s) for s in (2, 5, 10, 20, 40, 80))},
    }
    dataset_defaults = {"mnist": {"lr": 1e-3, "optimizer": "rmsprop", "rmsprop_decay": 0.9,
                                  "sigmas": (1.0, 5.0, 10.0)}}

    diagnostic_info = {
        "mmd2": Diagnostic("MMD$^2$", log=True),
        "loss_g": Diagnostic("generator loss (MMD)", log=True),
    }

    @classmethod
    def critic_steps(cls, hp):
        return 0  # no critic: the kernel is fixed

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())

    def step(self, real: Tensor) -> dict[str, Tensor]:
        x = real[0]
        fake = self.generator(self.noise(x.shape[1]))
        f, r, sig = fake.flatten(2), x.flatten(2), self.hp["sigmas"]
        with torch.no_grad():  # the data-data block does not depend on the generator
            k_rr = kernels.gaussian_gram(r, r, sig)
        d2 = kernels.mmd2_from_blocks(kernels.gaussian_gram(f, f, sig), k_rr, kernels.gaussian_gram(f, r, sig))
        loss_g = kernels.smooth_mmd(d2)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        self.opt_g.step()
        return {"mmd2": d2.detach(), "loss_g": loss_g.detach()}
