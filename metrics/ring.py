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
- **spread per direction** (`spread_tangential`, `spread_radial`, `spread_normal`): how
  widely samples scatter around their modes relative to the data, in each direction of the
  mode's local frame on a ring: along the ring (tangential), away from its centre (radial)
  and, in 3-D, across its plane (normal). For each strictly covered mode, the robust
  standard deviation (1.4826 x the median absolute value) of its samples' offsets from the
  centre along the direction, divided by the data's standard deviation along it; averaged
  over the modes. The data give 1 in every direction, samples whose noise in one direction is
  scaled by a give a there, a uniform smear along the ring about 3 along it, points piled on
  the centres 0. Mixtures that are not rings (the grid) are measured along the eigenvectors
  of their noise covariance and store only the overall spread.
- **spread** (`spread`): the per-direction spread farthest from 1 on a log scale, so it lies
  in the success band exactly when every direction does.
- **MMD^2** (`mmd2`): unbiased squared MMD between ``MMD_POINTS`` generated samples and as
  many fresh true samples, under the fixed sum of Gaussian kernels ``MMD_SIGMAS`` (never
  learned, so values are comparable across objectives).
- **success**: every mode strictly covered, ``hq_fraction >= SUCCESS_HQ`` (0.5) and every
  direction's spread in ``[1/sqrt 2, sqrt 2]``. Rationale: a fit succeeds when it puts a real
  share of its samples on every mode (no collapse, no forgotten mode), when most of its
  samples lie on a mode at all (not off the data, not non-finite), and when they scatter
  around the modes, in every direction, more like the data (spread 1) than like data twice
  as noisy (2) or half as noisy (1/2); on a log scale the midpoints are sqrt 2 and
  1/sqrt 2.
- **failure** (`failure`): why a run fails, the first that applies (`FAILURES`):
  ``collapse`` (at most ``COLLAPSE_SHARE``, a quarter, of the modes strictly covered),
  ``missed-modes`` (more, but not all), ``off-modes`` (every mode covered, hq fraction below
  ``SUCCESS_HQ``), ``too-wide`` (spread > sqrt 2), ``too-tight`` (spread < 1/sqrt 2), else
  ``ok``; ``success`` is ``failure == "ok"``.

The rules are stated in docs/analysis.md. Records store no metrics version:
``python -m sweeps.rescore`` recomputes these metrics from a record's stored samples.
Non-finite samples count as neither high quality nor assigned to any mode.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from core import streams
from metrics.success import COVER_SHARE, HQ_RADIUS, MMD_SIGMAS, failure_type
from objectives.kernels import mmd2

MAD_TO_STD = 1.4826  # median |x| of N(0, 1) is 1 / 1.4826
RING_TOLERANCE = 1e-3  # relative: centres this close to one circle in one plane make a ring
MMD_POINTS = 2_000


def ring_frames(centres: torch.Tensor) -> tuple[torch.Tensor, tuple[str, ...]] | None:
    """Each mode's local frame on a ring, ``(K, m, D)`` unit rows, and their names
    (tangential, radial[, normal]); None when the centres are not a ring in 2-D or 3-D (at
    least 3 of them, at one distance from their mean, in one plane)."""
    k, dim = centres.shape
    rel = centres - centres.mean(0)
    radii = rel.norm(dim=1)
    if k < 3 or dim not in (2, 3) or radii.min() <= 0 or (radii.max() - radii.min()) > RING_TOLERANCE * radii.max():
        return None
    radial = rel / radii[:, None]
    if dim == 2:
        tangential = torch.stack([-radial[:, 1], radial[:, 0]], 1)
        return torch.stack([tangential, radial], 1), ("tangential", "radial")
    _, s, vt = torch.linalg.svd(rel)
    if s[-1] > RING_TOLERANCE * s[0]:
        return None
    normal = vt[-1].expand(k, 3)
    return torch.stack([torch.linalg.cross(normal, radial), radial, normal], 1), ("tangential", "radial", "normal")


def covariance_frames(cov: torch.Tensor, k: int) -> torch.Tensor:
    """The eigenvectors of the per-mode covariance as every mode's frame, ``(K, D, D)``."""
    return torch.linalg.eigh(cov).eigenvectors.T.expand(k, -1, -1)


def direction_spreads(x: torch.Tensor, mode: torch.Tensor, modes: torch.Tensor, centres: torch.Tensor,
                      frames: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Per direction of ``frames``, the mean over ``modes`` of the robust standard deviation
    of the offsets ``x - centre`` (of the samples whose nearest mode is ``mode``) along the
    mode's direction, over the data's standard deviation ``sqrt(d^T cov d)`` along it; NaNs
    when ``modes`` is empty."""
    if not len(modes):
        return torch.full((frames.shape[1],), math.nan, dtype=torch.float64)
    per_mode = []
    for k in modes.tolist():
        d = frames[k]
        along = (x[mode == k] - centres[k]) @ d.T
        data_std = torch.einsum("md,de,me->m", d, cov, d).sqrt()
        per_mode.append(MAD_TO_STD * along.abs().median(0).values / data_std)
    return torch.stack(per_mode).mean(0)


def farthest_from_one(spreads: torch.Tensor) -> float:
    """The spread with the largest |log s| (0 counts as infinitely far); NaN if any is NaN."""
    if torch.isnan(spreads).any():
        return math.nan
    return float(spreads[torch.log(spreads).abs().argmax()])


def ring_metrics(samples: np.ndarray, centres: np.ndarray, noise_matrix: np.ndarray | float,
                 reference: np.ndarray | None = None) -> dict[str, float | int | bool | str]:
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
    xf = x[finite]
    xw, cw = xf @ whiten, c @ whiten
    near, mode = torch.cdist(xw, cw).min(1) if len(xw) else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
    hq = near < HQ_RADIUS
    hq_counts = torch.bincount(mode[hq], minlength=k)
    if hq_counts.sum() > 0:
        p = hq_counts.double() / hq_counts.sum()
        kl = float((p[p > 0] * torch.log(p[p > 0] * k)).sum())
    else:
        kl = math.log(k)
    strict = hq_counts >= COVER_SHARE * n / k
    ring = ring_frames(c)
    frames, names = ring if ring else (covariance_frames(a @ a.T, k), ())
    spreads = direction_spreads(xf, mode, strict.nonzero().flatten(), c, frames, a @ a.T)
    out: dict[str, float | int | bool | str] = {
        "modes_covered": int((hq_counts >= 1).sum()),
        "modes_covered_strict": int(strict.sum()),
        "n_modes": k,
        "hq_fraction": float(hq.sum()) / n,
        "mode_kl": kl,
        "spread": farthest_from_one(spreads),
        **{f"spread_{name}": float(s) for name, s in zip(names, spreads)},
        "finite_fraction": float(finite.sum()) / n,
    }
    if reference is not None:
        m = min(MMD_POINTS, len(xw), len(reference))
        # float32 keeps a sweep worker's memory low (three 2000 x 2000 blocks); its sums over
        # 4M kernel values are accurate to ~1e-8, far below the differences that matter
        ref = torch.as_tensor(np.asarray(reference[:m]), dtype=torch.float32)
        out["mmd2"] = float(mmd2(xf[:m].float(), ref, MMD_SIGMAS, unbiased=True)) if m > 1 else math.nan
    out["failure"] = failure_type(out["modes_covered_strict"], k, out["hq_fraction"], out["spread"])
    out["success"] = out["failure"] == "ok"
    return out


def reference_samples(dataset: Any, seed: int, n: int) -> np.ndarray:
    """Fresh true samples for metrics, independent of the training set of ``seed``."""
    return dataset.sample(n, streams.generator(seed, "reference")).numpy()


def toy_metrics(samples: np.ndarray, dataset: Any, seed: int) -> dict[str, float | int | bool | str]:
    """`ring_metrics` of a run's samples on toy data set ``dataset`` (trained with ``seed``)."""
    return ring_metrics(samples, dataset.centres.numpy(), dataset.noise_matrix.numpy(),
                        reference_samples(dataset, seed, 2_000))
