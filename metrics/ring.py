"""Sample-quality metrics for mixtures with known modes (rings and grids).

Distances are Mahalanobis distances under the mixture's per-mode covariance
``Sigma = A A^T`` (``x = centre + A eps``), so "3 standard deviations" means the same thing
along every axis: on ``ring3d`` it respects the thinner noise (std 0.1) across the ring's
plane. For ``n`` generated samples and ``K`` modes:

- **high-quality fraction** (`hq_fraction`): share of samples within 3 standard deviations
  (Mahalanobis distance < 3) of their nearest mode centre (VEEGAN, PacGAN). True samples
  score 0.989 in 2-D and 0.971 in 3-D.
- **modes covered** (`modes_covered`, PacGAN's rule): modes with at least one high-quality
  sample. **Strictly covered** (`modes_covered_strict`, this project's stricter rule): modes
  whose high-quality samples number at least ``COVER_SHARE`` (10%) of a uniform share,
  ``>= 0.1 * n / K`` (125 of 10,000 on the 8-mode ring).
- **mode KL** (`mode_kl`): KL(h || uniform) in nats of the histogram h of the modes of the
  high-quality samples (PacGAN); 0 when every mode gets the same share, log K when all sit
  at one mode (or when no sample is of high quality).
- **spread** (`spread`): how widely samples scatter around their modes relative to the
  data, in the direction where they scatter most. For each strictly covered mode, the
  robust standard deviation (1.4826 x the median absolute value) of its samples' whitened
  offsets from the centre along ``SPREAD_DIRECTIONS`` fixed directions; the widest
  direction counts, averaged over the modes. The data themselves give 1.05-1.10 (the widest
  of many directions picks up sampling noise), samples with twice the data's standard
  deviation 2.1, a uniform smear along the ring about 3, points piled on the centres 0.
- **MMD^2** (`mmd2`): unbiased squared MMD between ``MMD_POINTS`` generated samples and as
  many fresh true samples, under the fixed sum of Gaussian kernels ``MMD_SIGMAS`` (never
  learned, so values are comparable across objectives).
- **success**: every mode strictly covered, ``hq_fraction >= SUCCESS_HQ`` (0.5) and
  ``1/sqrt 2 <= spread <= sqrt 2``. Rationale: a fit succeeds when it puts a real share of
  its samples on every mode (no collapse, no forgotten mode), when most of its samples lie
  on a mode at all (not off the data, not non-finite), and when they scatter around the
  modes more like the data (spread 1) than like data twice as noisy (2) or half as noisy
  (1/2); on a log scale the midpoints are sqrt 2 and 1/sqrt 2. Collapse fails the coverage;
  mass off the modes fails the hq fraction; a smear between modes and an over-dispersed fit
  fail the upper bound of the spread, samples piled on the centres its lower bound. Tests
  hold the four cases: true samples, a smear, a collapse, twice the std.

Non-finite samples count as neither high quality nor assigned to any mode.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from core import streams
from objectives.kernels import mmd2

COVER_SHARE = 0.1
SUCCESS_HQ = 0.5
SUCCESS_SPREAD = math.sqrt(2.0)  # success needs 1/SUCCESS_SPREAD <= spread <= SUCCESS_SPREAD
HQ_RADIUS = 3.0  # in standard deviations (Mahalanobis)
SPREAD_DIRECTIONS = 64  # fixed random unit vectors (plus the axes) along which spread is measured
MAD_TO_STD = 1.4826  # median |x| of N(0, 1) is 1 / 1.4826
MMD_SIGMAS = (0.1, 0.2, 0.5, 1.0, 2.0)
MMD_POINTS = 2_000
SUCCESS_RULE = (f"success = every mode holds >= {COVER_SHARE:.0%} of a uniform share of high-quality samples, "
                f">= {SUCCESS_HQ:.0%} of all samples are high quality, and 1/sqrt 2 <= spread <= sqrt 2")


def directions(dim: int) -> torch.Tensor:
    """The axes and `SPREAD_DIRECTIONS` fixed random unit vectors of ``dim`` dimensions."""
    g = torch.randn(SPREAD_DIRECTIONS, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.cat([torch.eye(dim, dtype=torch.float64), g / g.norm(dim=1, keepdim=True)])


def spread_of(offsets: torch.Tensor, mode: torch.Tensor, modes: torch.Tensor) -> float:
    """Mean over ``modes`` of the widest robust standard deviation of whitened ``offsets``
    (each sample's offset from its nearest centre, whose index is ``mode``)."""
    if not len(modes):
        return math.nan
    u = directions(offsets.shape[1])
    widest = [float(MAD_TO_STD * (offsets[mode == k] @ u.T).abs().median(0).values.max()) for k in modes.tolist()]
    return sum(widest) / len(widest)


def ring_metrics(samples: np.ndarray, centres: np.ndarray, noise_matrix: np.ndarray | float,
                 reference: np.ndarray | None = None) -> dict[str, float | int | bool]:
    """The metrics above for ``samples (n, D)`` of a mixture with mode ``centres (K, D)`` and
    per-mode noise ``x = centre + noise_matrix @ eps`` (a number means that many times the
    identity); ``reference`` are fresh true samples for MMD^2."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    c = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    n, k, dim = x.shape[0], c.shape[0], c.shape[1]
    a = torch.as_tensor(np.asarray(noise_matrix), dtype=torch.float64)
    a = a * torch.eye(dim, dtype=torch.float64) if a.dim() == 0 else a
    whiten = torch.linalg.inv(a).T  # row vectors: x @ whiten = (A^-1 x^T)^T
    finite = torch.isfinite(x).all(1)
    xw, cw = x[finite] @ whiten, c @ whiten
    near, mode = torch.cdist(xw, cw).min(1) if len(xw) else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
    hq = near < HQ_RADIUS
    hq_counts = torch.bincount(mode[hq], minlength=k)
    if hq_counts.sum() > 0:
        p = hq_counts.double() / hq_counts.sum()
        kl = float((p[p > 0] * torch.log(p[p > 0] * k)).sum())
    else:
        kl = math.log(k)
    strict = hq_counts >= COVER_SHARE * n / k
    out: dict[str, float | int | bool] = {
        "modes_covered": int((hq_counts >= 1).sum()),
        "modes_covered_strict": int(strict.sum()),
        "n_modes": k,
        "hq_fraction": float(hq.sum()) / n,
        "mode_kl": kl,
        "spread": spread_of(xw - cw[mode], mode, strict.nonzero().flatten()),
        "finite_fraction": float(finite.sum()) / n,
    }
    if reference is not None:
        m = min(MMD_POINTS, len(xw), len(reference))
        # float32 keeps a sweep worker's memory low (three 2000 x 2000 blocks); its sums over
        # 4M kernel values are accurate to ~1e-8, far below the differences that matter
        ref = torch.as_tensor(np.asarray(reference[:m]), dtype=torch.float32)
        out["mmd2"] = float(mmd2(x[finite][:m].float(), ref, MMD_SIGMAS, unbiased=True)) if m > 1 else math.nan
    out["success"] = bool(out["modes_covered_strict"] == k and out["hq_fraction"] >= SUCCESS_HQ
                          and 1 / SUCCESS_SPREAD <= out["spread"] <= SUCCESS_SPREAD)
    return out


def reference_samples(dataset: Any, seed: int, n: int) -> np.ndarray:
    """Fresh true samples for metrics, independent of the training set of ``seed``."""
    return dataset.sample(n, streams.generator(seed, "reference")).numpy()


def toy_metrics(samples: np.ndarray, dataset: Any, seed: int) -> dict[str, float | int | bool]:
    """`ring_metrics` of a run's samples on toy data set ``dataset`` (trained with ``seed``)."""
    return ring_metrics(samples, dataset.centres.numpy(), dataset.noise_matrix.numpy(),
                        reference_samples(dataset, seed, 2_000))
