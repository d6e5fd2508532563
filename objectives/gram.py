"""GRAM-net (Srivastava, Xu, Gutmann, Sutton, ICLR 2020): generative ratio matching.

A projector f maps data to ``df`` dimensions. On each step, from ONE forward pass of the
generated batch and one of the real batch (separate passes, as the authors' code: a
batch-norm projector must not normalise them together):
- the density ratio r = p/q at the projected generated points is estimated by kernel
  mean matching, r = (n_q/n_p)(K_qq + eps I)^-1 K_qp 1 (with several bandwidths, one
  estimate per bandwidth, averaged: the authors' estimator), and the projector descends
  -(PD + mean r), PD = mean((r - 1)^2) the Pearson divergence (mean r is the authors'
  positivity regulariser): f learns a projection that preserves the ratio;
- the generator descends sqrt(MMD^2 + 1e-6) between projected generated and real points,
  MMD^2 under the sum of the bandwidths' kernels.
Both updates are applied together; neither player maximises the other's loss, so there is
no saddle point. The MMD and the ratio reuse the same Gram blocks.

Defaults and their sources (docs/defaults.md): toy from JuliaGRAM (scripts/predefined_args.jl,
2dring/3dring); image from GRAMFlow's CIFAR-10 setting (NOTES.md), whose kernel
exp(-d^2 / (2 s)) takes squared bandwidths s in {1, 2, 4, 8, 16}, here as standard
deviations sqrt(s); MNIST from JuliaGRAM (mnist), whose bandwidths are standard deviations.
"""
from __future__ import annotations

import math

from torch import Tensor

from objectives import kernels
from objectives.base import Diagnostic, Objective, set_grads
from objectives.registry import register


@register
class GRAMNet(Objective):
    name = "gram"
    version = 2  # per-bandwidth ratio; real and generated through the projector separately
    display_name = "GRAM-net"
    defaults = {
        "toy": {"lr": 1e-3, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam", "sigmas": (1.0,),
                "df": 10, "eps": 1e-3},
        "image": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam",
                  "sigmas": tuple(math.sqrt(s) for s in (1, 2, 4, 8, 16)), "df": 128, "eps": 1e-3},
    }
    dataset_defaults = {"mnist": {"lr": 1e-3, "sigmas": (0.1, 1.0, 10.0, 100.0), "df": 100}}

    diagnostic_info = {
        "pd": Diagnostic("$D^*$ Pearson divergence (projector maximises)", log=True),
        "mean_ratio": Diagnostic("mean density ratio $\\hat r$"),
        "loss_f": Diagnostic("projector loss $-(D^* + \\bar r)$"),
        "mmd2": Diagnostic("MMD$^2$", log=True),
        "loss_g": Diagnostic("generator loss $\\hat L_\\gamma$ (MMD)", log=True),
    }
    trace_pair = ("loss_g", "pd")

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.projector = self.add_net("projector", factory.critic(hp["df"], "projector"))
        self.opt_f = self.add_optimizer("projector", self.projector.parameters())
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.f_params = list(self.projector.parameters())
        self.g_params = list(self.generator.parameters())

    def features(self, x: Tensor) -> Tensor:
        return self.projector(x)

    def step(self, real: Tensor) -> dict[str, Tensor]:
        x = real[0]
        fake = self.generator(self.noise(x.shape[1]))
        hq, hp = self.projector(fake), self.projector(x)
        ratio, d2 = kernels.ratio_and_mmd2(hq, hp, self.hp["sigmas"], self.hp["eps"])
        pd = (ratio - 1).pow(2).mean(-1)
        loss_f = -(pd + ratio.mean(-1))
        loss_g = kernels.smooth_mmd(d2)
        set_grads(loss_f.sum(), self.f_params, retain_graph=True)
        set_grads(loss_g.sum(), self.g_params)
        self.opt_f.step()
        self.opt_g.step()
        return {"pd": pd.detach(), "mean_ratio": ratio.detach().mean(-1), "loss_f": loss_f.detach(),
                "mmd2": d2.detach(), "loss_g": loss_g.detach()}
