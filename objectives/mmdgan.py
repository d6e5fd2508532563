"""MMD-GAN (Li et al. 2017): an adversarially trained encoder-decoder critic.

The encoder f maps data to a ``df`` space where the critic *maximises* the MMD
between real and generated codes, with the one-sided penalty and autoencoder
reconstruction terms; the generator minimises MMD + one-sided penalty. Encoder weights
are clipped to [-clip, clip] before every critic step; ``n_critic`` critic steps (each on
a fresh real batch and fresh noise) precede every generator step. Settings follow the
authors' ring code (NOTES.md): lambda_rg 16, lambda_ae 8, clip 0.1, Adam 5e-5.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives import kernels
from objectives.base import Diagnostic, Objective, set_grads
from objectives.registry import register


@register
class MMDGAN(Objective):
    name = "mmdgan"
    display_name = "MMD-GAN"
    defaults = {
        "toy": {"lr": 5e-5, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam", "sigmas": (1.0,),
                "df": 10, "clip": 0.1, "lambda_rg": 16.0, "lambda_ae": 8.0, "n_critic": 5},
        "image": {"lr": 5e-5, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam",
                  "sigmas": (1.0, 2.0, 4.0, 8.0, 16.0),
                  "df": 100, "clip": 0.01, "lambda_rg": 16.0, "lambda_ae": 8.0, "n_critic": 5},
    }

    diagnostic_info = {
        "loss_critic": Diagnostic("critic loss"),
        "ae": Diagnostic("autoencoder error"),
        "loss_g": Diagnostic("generator loss (MMD + one-sided penalty)"),
        "mmd2": Diagnostic("MMD$^2$", log=True),
    }
    trace_pair = ("loss_g", "loss_critic")

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.encoder = self.add_net("encoder", factory.critic(hp["df"], "encoder"))
        self.decoder = self.add_net("decoder", factory.decoder(hp["df"], "decoder"))
        critic_params = itertools.chain(self.encoder.parameters(), self.decoder.parameters())
        self.opt_c = self.add_optimizer("critic", critic_params)
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.g_params = list(self.generator.parameters())
        self.enc_params = list(self.encoder.parameters())

    @property
    def batches_per_step(self) -> int:
        return int(self.hp["n_critic"]) + 1

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def _mmd_terms(self, x: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(squared MMD, smooth MMD, one-sided penalty) in code space, plus the codes."""
        n = x.shape[1]
        codes = self.encoder(torch.cat([x, fake], 1))
        fx, ff = codes[:, :n], codes[:, n:]
        d2 = kernels.mmd2(ff, fx, self.hp["sigmas"])
        one_sided = -F.relu(-(ff.mean(1) - fx.mean(1))).mean(-1)
        return d2, kernels.smooth_mmd(d2) + self.hp["lambda_rg"] * one_sided, codes

    def step(self, real: Tensor) -> dict[str, Tensor]:
        n, n_critic = real.shape[2], real.shape[0] - 1
        with torch.no_grad():  # G is fixed during the critic steps: one pass makes all their fakes
            fakes = self.generator(self.noise(n * n_critic)).unflatten(1, (n_critic, n)).unbind(1)
        for x, fake in zip(real[:-1], fakes):
            with torch.no_grad():
                for p in self.enc_params:
                    p.clamp_(-self.hp["clip"], self.hp["clip"])
            d2, adv, codes = self._mmd_terms(x, fake)
            recon = self.decoder(codes)
            both = torch.cat([x, fake], 1)
            ae = F.mse_loss(recon, both, reduction="none").flatten(2).mean(-1)
            ae = ae[:, :n].mean(1) + ae[:, n:].mean(1)
            loss_c = -(adv - self.hp["lambda_ae"] * ae)
            self.opt_c.zero_grad(set_to_none=True)
            loss_c.sum().backward()
            self.opt_c.step()

        fake = self.generator(self.noise(n))
        d2_g, loss_g, _ = self._mmd_terms(real[-1], fake)
        set_grads(loss_g.sum(), self.g_params)
        self.opt_g.step()
        return {"loss_critic": loss_c.detach(), "ae": ae.detach(), "loss_g": loss_g.detach(),
                "mmd2": d2_g.detach()}
