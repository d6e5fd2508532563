"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic with a gradient penalty.

Per generator step, ``n_critic`` critic steps, each on a fresh real batch and fresh noise,
descend ``mean D(G(z)) - mean D(x) + lambda_gp * mean (||grad D(x_hat)|| - 1)^2`` with
``x_hat = eps x + (1 - eps) G(z)``, eps ~ U(0, 1) per sample (the paper's Algorithm 1);
then the generator descends ``-mean D(G(z))`` on fresh noise.

Stacked runs: the critic output is summed over runs and samples before differentiating
with respect to the interpolates, and run r's output depends only on run r's inputs, so
``grad`` hands every run its own input gradient and the penalty stays per run. The
interpolation weights come from a per-run random stream of their own (seeded from each
run's seed, saved with the objective), so they do not depend on the stack either.

Defaults: lambda 10, n_critic 5, Adam lr 1e-4, betas (0.5, 0.9), as in the authors' MNIST
and CIFAR code; their toy script lowers lambda to 0.1, available as ``--set lambda_gp=0.1``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from objectives.base import Diagnostic, NoiseSource, Objective, set_grads
from objectives.registry import register

_PAPER = {"lr": 1e-4, "beta1": 0.5, "beta2": 0.9, "optimizer": "adam", "lambda_gp": 10.0, "n_critic": 5}


@register
class WGANGP(Objective):
    name = "wgangp"
    version = 2  # real, generated and interpolates through the critic in separate passes; no batch norm
    display_name = "WGAN-GP"
    defaults = {"toy": dict(_PAPER), "image": dict(_PAPER)}

    diagnostic_info = {
        "loss_critic": Diagnostic("critic loss"),
        "w_dist": Diagnostic("Wasserstein estimate"),
        "gp": Diagnostic("gradient penalty"),
        "loss_g": Diagnostic("generator loss $-$mean $D(G(z))$"),
    }
    trace_pair = ("loss_g", "loss_critic")

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        # no batch norm: the per-sample gradient penalty is not defined for a batch-normalised
        # critic (Gulrajani et al. 2017, section 4), so the paper's critics have none
        self.critic = self.add_net("critic", factory.critic(1, "critic", batch_norm=False))
        self.opt_c = self.add_optimizer("critic", self.critic.parameters())
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.g_params = list(self.generator.parameters())
        # interpolation weights: U(-1, 1) per run and sample, mapped to [0, 1], from a stream
        # of their own per run (see the module docstring), saved in state_dict
        self.mix = NoiseSource([1] * factory.runs, factory.seeds, factory.device, "uniform", role="mixing")

    @property
    def batches_per_step(self) -> int:
        return int(self.hp["n_critic"])

    @staticmethod
    def penalty(x_hat: Tensor, out: Tensor) -> Tensor:
        """Per-run ``mean (||grad D(x_hat)||_2 - 1)^2``; ``out`` is D at the interpolates ``x_hat``."""
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        return (grad.flatten(2).norm(dim=-1) - 1).pow(2).mean(-1)

    def critic_step(self, x: Tensor) -> dict[str, Tensor]:
        """One critic update on real ``x`` (R, B, *x_shape); returns its per-run terms."""
        n = x.shape[1]
        with torch.no_grad():
            fake = self.generator(self.noise(n))
        eps = self.mix(n).add_(1).mul_(0.5).view(*x.shape[:2], *[1] * (x.dim() - 2))
        x_hat = torch.lerp(fake, x, eps).requires_grad_(True)
        w_dist = self.critic(x).mean((1, 2)) - self.critic(fake).mean((1, 2))
        gp = self.penalty(x_hat, self.critic(x_hat))
        loss = -w_dist + self.hp["lambda_gp"] * gp
        self.opt_c.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt_c.step()
        return {"loss_critic": loss.detach(), "w_dist": w_dist.detach(), "gp": gp.detach()}

    def step(self, real: Tensor) -> dict[str, Tensor]:
        for x in real:
            diag = self.critic_step(x)
        fake = self.generator(self.noise(real.shape[2]))
        loss_g = -self.critic(fake).mean((1, 2))
        set_grads(loss_g.sum(), self.g_params)
        self.opt_g.step()
        return {**diag, "loss_g": loss_g.detach()}

    def random_streams(self) -> list[NoiseSource]:
        return [self.mix]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mix": self.mix.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.mix.load_state_dict(state["mix"])
