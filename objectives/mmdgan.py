"""MMD-GAN (Li et al. 2017): an adversarially trained encoder-decoder critic.

The encoder f maps data to a ``df`` space where the critic *maximises* the MMD (sum kernel
over ``sigmas``) between real and generated codes, with the one-sided penalty and
autoencoder reconstruction terms; the generator minimises MMD + one-sided penalty. Encoder
weights are clipped to [-clip, clip] before every critic step; ``n_critic`` critic steps,
each on fresh noise, precede every generator step. Real and generated samples go through
the encoder and decoder in separate passes (a batch-norm critic must not normalise them
together), as in both source codes.

``reuse_batch``: the GRAM authors' ring code (JuliaGRAM src/mmdgan.jl) uses ONE real batch
for all critic steps and the generator step of an iteration; Li et al.'s image code
(mmd_gan.py) draws a fresh real batch for each. Defaults (docs/defaults.md): toy from
JuliaGRAM (lambda_rg 16, lambda_ae 8, clip 0.1, Adam 5e-5, one batch reused), image from
Li et al. (RMSprop 5e-5 with torch's decay 0.99, clip 0.01, bandwidths {1, 2, 4, 8, 16}
as standard deviations: their kernel is exp(-gamma d^2), gamma = 1 / (2 sigma^2)). Li et
al. also run 100 critic steps for the first 25 generator steps and every 500th; we keep
5 throughout (a stated deviation).
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
    version = 2  # separate encoder/decoder passes; one real batch per iteration on toy data
    display_name = "MMD-GAN"
    defaults = {
        "toy": {"lr": 5e-5, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam", "sigmas": (1.0,),
                "df": 10, "clip": 0.1, "lambda_rg": 16.0, "lambda_ae": 8.0, "n_critic": 5, "reuse_batch": True},
        "image": {"lr": 5e-5, "optimizer": "rmsprop", "rmsprop_decay": 0.99, "sigmas": (1.0, 2.0, 4.0, 8.0, 16.0),
                  "df": 100, "clip": 0.01, "lambda_rg": 16.0, "lambda_ae": 8.0, "n_critic": 5, "reuse_batch": False},
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
        return 1 if self.hp["reuse_batch"] else int(self.hp["n_critic"]) + 1

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def _mmd_terms(self, fx: Tensor, ff: Tensor) -> tuple[Tensor, Tensor]:
        """(squared MMD, smooth MMD + lambda_rg * one-sided penalty) of real and generated codes."""
        d2 = kernels.mmd2(ff, fx, self.hp["sigmas"])
        one_sided = -F.relu(-(ff.mean(1) - fx.mean(1))).mean(-1)
        return d2, kernels.smooth_mmd(d2) + self.hp["lambda_rg"] * one_sided

    def _reconstruction(self, x: Tensor, code: Tensor) -> Tensor:
        """Per-run mean squared error of decoding ``code`` back to ``x``."""
        return F.mse_loss(self.decoder(code), x, reduction="none").flatten(1).mean(-1)

    def step(self, real: Tensor) -> dict[str, Tensor]:
        n, n_critic = real.shape[2], int(self.hp["n_critic"])
        reals = [real[0]] * (n_critic + 1) if self.hp["reuse_batch"] else list(real)
        with torch.no_grad():  # G is fixed during the critic steps: one pass makes all their fakes
            fakes = self.generator(self.noise(n * n_critic)).unflatten(1, (n_critic, n)).unbind(1)
        for x, fake in zip(reals[:-1], fakes):
            with torch.no_grad():
                for p in self.enc_params:
                    p.clamp_(-self.hp["clip"], self.hp["clip"])
            fx, ff = self.encoder(x), self.encoder(fake)
            d2, adv = self._mmd_terms(fx, ff)
            ae = self._reconstruction(x, fx) + self._reconstruction(fake, ff)
            loss_c = -(adv - self.hp["lambda_ae"] * ae)
            self.opt_c.zero_grad(set_to_none=True)
            loss_c.sum().backward()
            self.opt_c.step()

        fake = self.generator(self.noise(n))
        d2_g, loss_g = self._mmd_terms(self.encoder(reals[-1]), self.encoder(fake))
        set_grads(loss_g.sum(), self.g_params)
        self.opt_g.step()
        return {"loss_critic": loss_c.detach(), "ae": ae.detach(), "loss_g": loss_g.detach(),
                "mmd2": d2_g.detach()}
