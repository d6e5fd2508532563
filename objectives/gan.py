"""GAN (Goodfellow et al. 2014) with the non-saturating generator loss.

Per iteration: one discriminator step on binary cross-entropy (real -> 1, generated -> 0),
then one generator step on -log D(G(z)) against the updated discriminator, on fresh noise
(the authors' code, JuliaGRAM src/gan.jl; the PyTorch DCGAN reference reuses the batch).
Real and generated samples go through the discriminator in separate passes.

Defaults (docs/defaults.md): Adam 1e-4, beta1 0.5 on toy data (JuliaGRAM) and on images
(GRAMFlow's CIFAR-10 setting, NOTES.md). The discriminator loss is the sum of the real and
generated halves' mean BCE, twice the authors' mean over both halves: Adam's update does
not depend on that constant (up to its eps).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives.base import Diagnostic, Objective, set_grads
from objectives.registry import register


@register
class GAN(Objective):
    name = "gan"
    version = 2  # the generator step draws fresh noise
    display_name = "GAN"
    defaults = {
        "toy": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam"},
        "image": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam"},
    }

    diagnostic_info = {
        "loss_d": Diagnostic("discriminator loss"),
        "loss_g": Diagnostic("generator loss $-\\log D(G(z))$"),
        "d_real": Diagnostic("D(real)"),
        "d_fake": Diagnostic("D(generated)"),
    }
    trace_pair = ("loss_g", "loss_d")

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.disc = self.add_net("discriminator", factory.critic(1, "discriminator"))
        self.opt_d = self.add_optimizer("discriminator", self.disc.parameters())
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.g_params = list(self.generator.parameters())

    def step(self, real: Tensor) -> dict[str, Tensor]:
        x = real[0]
        n = x.shape[1]
        with torch.no_grad():
            fake = self.generator(self.noise(n))
        # Real and fake go through the discriminator in SEPARATE passes: in one joint batch a
        # batch-norm discriminator tells them apart by batch statistics alone, and the
        # generator step (fakes only) then gets no signal.
        logit_real, logit_fake = self.disc(x), self.disc(fake)
        # BCE with logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l)
        loss_d = F.softplus(-logit_real).mean((1, 2)) + F.softplus(logit_fake).mean((1, 2))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.sum().backward()
        self.opt_d.step()

        fake_logits = self.disc(self.generator(self.noise(n)))
        loss_g = F.softplus(-fake_logits).mean((1, 2))
        set_grads(loss_g.sum(), self.g_params)
        self.opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": logit_real.detach().sigmoid().mean((1, 2)),
                "d_fake": logit_fake.detach().sigmoid().mean((1, 2))}

