"""MMD-net / GMMN (Li et al. 2015; Dziugaite et al. 2015): no critic at all.

The generator minimises sqrt(MMD^2 + 1e-6) between generated and real batches, computed in
data space with a fixed Gaussian kernel (the authors' code; RMSprop on the ring).
"""
from __future__ import annotations

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
        "toy": {"lr": 1e-3, "optimizer": "rmsprop", "sigmas": (1.0,)},
        # GMMN's MNIST bandwidths (Li et al. 2015) on images in [-1, 1]
        "image": {"lr": 1e-4, "optimizer": "adam", "beta1": 0.5, "beta2": 0.999,
                  "sigmas": (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)},
    }

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
