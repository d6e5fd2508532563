"""Shared kernel math: Gaussian Gram matrices, squared MMD and the kernel density-ratio estimate.

Every function accepts leading batch dimensions, so R independent runs stacked on dim 0
(shape ``(R, n, d)``) are handled in one call. The kernel for a list of bandwidths is the
*sum* of Gaussian kernels ``k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))``.

The ``*_from_gram`` variants let an objective build one joint Gram matrix of
``[x; y]`` from a single matrix product and reuse its blocks (GRAM-net needs the MMD and
the density ratio on the same projected points).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Sigmas = float | Sequence[float]


def _as_tuple(sigmas: Sigmas) -> tuple[float, ...]:
    return (float(sigmas),) if isinstance(sigmas, (int, float)) else tuple(float(s) for s in sigmas)


def sq_distances(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``(..., n, m)`` from one matrix product."""
    xx = x.pow(2).sum(-1).unsqueeze(-1)
    yy = y.pow(2).sum(-1).unsqueeze(-2)
    return (xx + yy - 2.0 * (x @ y.transpose(-1, -2))).clamp_min(0.0)


# exp() of arguments below about -87 underflows float32 into denormals, which take a slow
# path on CPUs (we measured a 9x slower exp late in training). Kernel values below
# exp(-80) ~ 2e-35 are indistinguishable from 0 next to the diagonal's 1, so clamp there.
MIN_LOG_KERNEL = -80.0


def gaussian_gram(x: Tensor, y: Tensor, sigmas: Sigmas) -> Tensor:
    """Gram matrix ``K[i, j] = sum_s exp(-||x_i - y_j||^2 / (2 s^2))`` of shape ``(..., n, m)``."""
    d2 = sq_distances(x, y)
    sig = _as_tuple(sigmas)
    gram = torch.exp((d2 * (-0.5 / sig[0] ** 2)).clamp_min(MIN_LOG_KERNEL))
    for s in sig[1:]:
        gram = gram + torch.exp((d2 * (-0.5 / s**2)).clamp_min(MIN_LOG_KERNEL))
    return gram


def joint_gram(x: Tensor, y: Tensor, sigmas: Sigmas) -> Tensor:
    """Gram matrix of the stacked points ``[x; y]``: blocks xx, xy, yx, yy in one product."""
    z = torch.cat([x, y], dim=-2)
    return gaussian_gram(z, z, sigmas)


def mmd2_from_gram(gram: Tensor, n: int, unbiased: bool = False) -> Tensor:
    """Squared MMD between the first ``n`` points of a joint Gram matrix and the rest."""
    kxx, kyy, kxy = gram[..., :n, :n], gram[..., n:, n:], gram[..., :n, n:]
    m = gram.shape[-1] - n
    if not unbiased:
        return kxx.mean((-1, -2)) + kyy.mean((-1, -2)) - 2.0 * kxy.mean((-1, -2))
    tr_x = torch.diagonal(kxx, dim1=-2, dim2=-1).sum(-1)
    tr_y = torch.diagonal(kyy, dim1=-2, dim2=-1).sum(-1)
    return ((kxx.sum((-1, -2)) - tr_x) / (n * (n - 1))
            + (kyy.sum((-1, -2)) - tr_y) / (m * (m - 1))
            - 2.0 * kxy.mean((-1, -2)))


def mmd2(x: Tensor, y: Tensor, sigmas: Sigmas, unbiased: bool = False) -> Tensor:
    """Squared MMD between samples ``x (..., n, d)`` and ``y (..., m, d)`` under the sum kernel.

    The biased (V-statistic) estimate is non-negative; the unbiased (U-statistic) one
    drops the diagonal terms and can be slightly negative when the two sets agree.
    """
    return mmd2_from_gram(joint_gram(x, y, sigmas), x.shape[-2], unbiased)


def mmd(x: Tensor, y: Tensor, sigmas: Sigmas, floor: float = 1e-6) -> Tensor:
    """``sqrt(max(MMD^2, 0) + floor)``: the smooth MMD the authors' code minimises."""
    return mmd2(x, y, sigmas).clamp_min(0.0).add(floor).sqrt()


def ratio_from_gram(gram: Tensor, n_de: int, eps: float = 1e-3) -> Tensor:
    """Density ratio at the first ``n_de`` points of a joint Gram matrix (see `density_ratio`).

    Only the first ``n_de`` rows are read, so ``gram`` may be just those rows.
    """
    n_nu = gram.shape[-1] - n_de
    k_dede = gram[..., :n_de, :n_de]
    b = gram[..., :n_de, n_de:].sum(-1, keepdim=True)
    eye = torch.eye(n_de, dtype=gram.dtype, device=gram.device)
    chol, _ = torch.linalg.cholesky_ex(k_dede + eps * eye)
    return torch.cholesky_solve(b, chol).squeeze(-1) * (n_de / n_nu)


def density_ratio(x_de: Tensor, x_nu: Tensor, sigmas: Sigmas, eps: float = 1e-3) -> Tensor:
    """Kernel-mean-matching estimate of ``p_nu / p_de`` at the points ``x_de``.

    ``r = (n_de / n_nu) (K_dede + eps I)^-1 K_denu 1`` (Sugiyama et al. 2012, fixed design),
    solved through a Cholesky factor, never an explicit inverse. Differentiable in both
    point sets. ``cholesky_ex`` never raises, so one ill-conditioned run in a stack yields
    non-finite values for that run only (caught by the divergence check) instead of
    aborting the others. Returns shape ``(..., n_de)``.
    """
    rows = gaussian_gram(x_de, torch.cat([x_de, x_nu], dim=-2), sigmas)
    return ratio_from_gram(rows, x_de.shape[-2], eps)
