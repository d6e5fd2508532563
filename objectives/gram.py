"""GRAM-net (Srivastava, Xu, Gutmann, Sutton, ICLR 2020): generative ratio matching.

A projector f maps data to ``df`` dimensions; the generator minimises the MMD between the
projected generated and real points, and the projector learns a projection in which a
kernel density-ratio estimate is informative. Neither player maximises the other's loss,
so there is no saddle point. Real and generated batches always go through the projector
in separate passes (a batch-norm projector must not normalise them together). The
authors' two codes differ in the step; hyperparameter ``form`` selects one:

``form="julia"`` (JuliaGRAM ``src/gramnet.jl``, ``src/kmm.jl``; the paper's equations):
- the ratio r = p/q at the projected GENERATED points, r = (n_q/n_p)(K_qq + eps I)^-1 K_qp 1
  (with several bandwidths, one estimate per bandwidth, averaged), and the projector
  descends -(PD + mean r), PD = mean((r - 1)^2) the Pearson divergence (mean r is the
  authors' positivity regulariser);
- the generator descends sqrt(MMD^2 + 1e-6), MMD^2 biased under the sum of the bandwidths'
  kernels;
- both gradients come from ONE forward pass and both players are updated together.

``form="gramflow"`` (GRAMFlow, the authors' TensorFlow code that made Table 1;
github.com/GRAM-nets/GRAMFlow at commit 64afac9, ``GRAMFlow.ipynb``, line numbers of the
raw notebook file):
- the ratio q/p at the projected DATA points: ``computeRatio(GL, DL)`` (l. 203) puts its
  second argument, the data features DL, first (l. 82), so k_de_de = K_dd and
  k_de_nu = K_dg (l. 114-115), and r = K_dd^-1 K_dg 1 with an explicit inverse
  (``tf.matrix_inverse``), no eps and no n_de/n_nu factor (the batches have equal size,
  here as there), one estimate per bandwidth, averaged (l. 109, 119, 123);
- projector loss -mean(r) (l. 208): no Pearson term;
- generator loss sqrt(MMD^2) (l. 120, 123, 206): the biased MMD^2 of the projected
  batches under the sum of the bandwidths' kernels (``reduce_sum(S * kernel_val)`` over
  the joint Gram matrix with weights 1/n, -1/m), no floor;
- the kernel is exp(-d^2 / (2 s)) (l. 93, 112), s in {1, 2, 4, 8, 16} (l. 75): squared
  bandwidths, here the standard deviations sqrt(s); features are the projector's 128-d
  dense output, not normalised (l. 77-78, 145);
- per iteration the projector steps, then the generator steps against the UPDATED
  projector, on the same real batch and the same noise (l. 262-269); Adam 1e-4,
  beta1 0.5 for both (l. 182-184, 219-220). The generator is unchanged between the two
  updates, so its output is computed once and reused (the same numbers as TensorFlow's
  second forward pass).

Defaults and their sources (docs/defaults.md): toy from JuliaGRAM (scripts/predefined_args.jl,
2dring/3dring), form "julia"; image from GRAMFlow's CIFAR-10 setting, form "gramflow"
(``--set form=julia`` gives the Julia step there); MNIST from JuliaGRAM (mnist, the
default data set of its scripts/gram.jl) with its bandwidths (standard deviations), so
form "julia" too.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from objectives import kernels
from objectives.base import Diagnostic, Objective, set_grads
from objectives.registry import register


def same_points(x: Tensor) -> Tensor:
    """``(R, n, n)``: True where rows i and j of the batch ``x (R, n, ...)`` are equal."""
    flat = x.flatten(2)
    return (flat.unsqueeze(2) == flat.unsqueeze(1)).all(-1)


def gramflow_ratio(h_data: Tensor, h_gen: Tensor, sigmas: kernels.Sigmas, same: Tensor) -> Tensor:
    """GRAMFlow's density-ratio estimate q/p at the data points, shape ``(R, n_data)``:
    ``K_dd^-1 K_dg 1`` per bandwidth with an explicit inverse and no regulariser,
    averaged over bandwidths.

    ``same`` (`same_points` of the data batch) marks repeated data points: the harness
    draws batches with replacement, GRAMFlow walks through shuffled epochs, so only here
    can a batch hold a point twice, which makes ``K_dd`` exactly singular. Then the
    estimate is the pseudo-inverse's ``K_dd^+ K_dg 1``: the system of the distinct points
    is solved (the rows and columns of later copies replaced by the identity's) and each
    copy gets its point's ratio divided by the number of copies. Without repeats every
    added factor is an exact 1 or 0, so the numbers are the explicit inverse's, bit for bit.
    ``inv_ex`` neither checks nor synchronises: an otherwise singular ``K_dd`` gives
    non-finite values for that run only (caught by the divergence check)."""
    earlier = torch.ones_like(same).tril_(-1)
    first = (~(same & earlier).any(-1)).to(h_data.dtype)  # (R, n): the first of its copies
    keep = first.unsqueeze(-1) * first.unsqueeze(-2)
    k_dd = kernels.gaussian_grams(h_data, h_data, sigmas) * keep + torch.diag_embed(1 - first)
    k_dg_1 = kernels.gaussian_grams(h_data, h_gen, sigmas).sum(-1) * first
    inverse, _ = torch.linalg.inv_ex(k_dd)
    ratio = (inverse @ k_dg_1.unsqueeze(-1)).mean(0)
    same = same.to(h_data.dtype)
    return (same @ ratio).squeeze(-1) / same.sum(-1)


@register
class GRAMNet(Objective):
    name = "gram"
    version = 3  # form: images default to GRAMFlow's step
    display_name = "GRAM-net"
    defaults = {
        "toy": {"lr": 1e-3, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam", "sigmas": (1.0,),
                "df": 10, "eps": 1e-3, "form": "julia"},
        "image": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "optimizer": "adam",
                  "sigmas": tuple(math.sqrt(s) for s in (1, 2, 4, 8, 16)), "df": 128, "eps": 1e-3,
                  "form": "gramflow"},
    }
    dataset_defaults = {"mnist": {"lr": 1e-3, "sigmas": (0.1, 1.0, 10.0, 100.0), "df": 100, "form": "julia"}}

    diagnostic_info = {
        "pd": Diagnostic("Pearson divergence $\\hat D$ of the estimated ratio", log=True),
        "mean_ratio": Diagnostic("mean density ratio $\\hat r$"),
        "loss_f": Diagnostic("projector loss ($-(\\hat D + \\bar r)$ Julia, $-\\bar r$ GRAMFlow)"),
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
        if self.hp["form"] == "gramflow":
            return self._gramflow_step(x, fake)
        return self._julia_step(x, fake)

    def _julia_step(self, x: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Ratio at the generated points; both players from one pass, updated together."""
        hq, hp = self.projector(fake), self.projector(x)
        ratio, d2 = kernels.ratio_and_mmd2(hq, hp, self.hp["sigmas"], self.hp["eps"])
        pd = (ratio - 1).pow(2).mean(-1)
        loss_f = -(pd + ratio.mean(-1))
        loss_g = kernels.smooth_mmd(d2)
        set_grads(loss_f.sum(), self.f_params, retain_graph=True)
        set_grads(loss_g.sum(), self.g_params)
        self.opt_f.step()
        self.opt_g.step()
        return self._diagnostics(ratio, loss_f, d2, loss_g)

    def _gramflow_step(self, x: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Ratio at the data points, projector step; then the generator's step on the same
        batch and noise through the updated projector."""
        ratio = gramflow_ratio(self.projector(x), self.projector(fake.detach()), self.hp["sigmas"], same_points(x))
        loss_f = -ratio.mean(-1)
        set_grads(loss_f.sum(), self.f_params)
        self.opt_f.step()
        with torch.no_grad():  # the data's features carry no gradient to the generator
            hp = self.projector(x)
        d2 = kernels.mmd2(self.projector(fake), hp, self.hp["sigmas"])
        loss_g = kernels.smooth_mmd(d2, floor=0.0)
        set_grads(loss_g.sum(), self.g_params)
        self.opt_g.step()
        return self._diagnostics(ratio, loss_f, d2, loss_g)

    @staticmethod
    def _diagnostics(ratio: Tensor, loss_f: Tensor, d2: Tensor, loss_g: Tensor) -> dict[str, Tensor]:
        ratio = ratio.detach()
        return {"pd": (ratio - 1).pow(2).mean(-1), "mean_ratio": ratio.mean(-1), "loss_f": loss_f.detach(),
                "mmd2": d2.detach(), "loss_g": loss_g.detach()}
