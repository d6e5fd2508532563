"""Least-squares GAN (Mao et al. 2017) as an objective plugin kept outside the package:
the worked example of docs/adding-an-objective.md.

    python -m sweeps.stability --models lsgan --plugin examples/lsgan.py --preset smoke --out /tmp/plugin_demo

The discriminator regresses real points to 1 and generated ones to 0; the generator
pulls D(G(z)) towards 1. Same networks, step structure and optimiser settings as the GAN
baseline (real and generated samples go through the discriminator in separate passes, so
a batch-norm discriminator cannot tell them apart by batch statistics), so a comparison
between the two isolates the loss.
"""
from __future__ import annotations

from torch import Tensor

import objectives
from objectives import Diagnostic, Objective, register
from objectives.base import set_grads


@register
class LSGAN(Objective):
    name = "lsgan"
    display_name = "LSGAN"  # how tables and figures name it
    defaults = objectives.get("gan").defaults  # the GAN baseline's settings, per data kind
    diagnostic_info = {"loss_d": Diagnostic("discriminator loss"),
                       "loss_g": Diagnostic("generator loss $(D(G(z)) - 1)^2 / 2$")}
    trace_pair = ("loss_g", "loss_d")  # drawn together in the first panel of trace.png

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)  # builds self.generator
        self.disc = self.add_net("discriminator", factory.critic(1, "discriminator"))
        self.opt_d = self.add_optimizer("discriminator", self.disc.parameters())
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.g_params = list(self.generator.parameters())

    def step(self, real: Tensor) -> dict[str, Tensor]:
        x = real[0]  # (R, B, *x_shape): batches_per_step is 1
        n = x.shape[1]
        fake = self.generator(self.noise(n))  # (R, B, *x_shape), each run from its own noise
        out_real, out_fake = self.disc(x), self.disc(fake.detach())  # (R, B, 1) each, separate passes
        loss_d = 0.5 * ((out_real - 1).pow(2).mean((1, 2)) + out_fake.pow(2).mean((1, 2)))  # (R,)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.sum().backward()  # summed over runs: run r's gradient is its own loss's
        self.opt_d.step()

        loss_g = 0.5 * (self.disc(fake) - 1).pow(2).mean((1, 2))  # (R,)
        set_grads(loss_g.sum(), self.g_params)  # generator gradients only
        self.opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
