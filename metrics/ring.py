"""Sample-quality metrics for mixtures with known modes (rings and grids).

Definitions (VEEGAN / PacGAN conventions), for ``n`` generated samples, ``K`` mode centres
and the per-mode standard deviation ``std``:

- **high-quality fraction** (`hq_fraction`): share of samples within ``3 * std`` of their
  nearest mode centre.
- **modes covered** (`modes_covered`): modes whose high-quality samples number at least
  ``COVER_SHARE`` (10%) of a uniform share, i.e. ``>= 0.1 * n / K`` (125 of 10,000 on the
  8-mode ring).
- **mode KL** (`mode_kl`): KL(h || uniform) of the histogram h of nearest-mode assignments
  of all finite samples, in nats; 0 when every mode gets the same share, log K when all
  samples sit at one mode.
- **MMD^2** (`mmd2`): unbiased squared MMD between ``MMD_POINTS`` generated samples and as
  many fresh true samples, under the fixed sum of Gaussian kernels ``MMD_SIGMAS`` (never
  learned, so values are comparable across objectives).
- **success**: all K modes covered and ``hq_fraction >= SUCCESS_HQ`` (0.5).

Non-finite samples count as neither high quality nor assigned to any mode.
"""
from __future__ import annotations

import math

from typing import Any

import numpy as np
import torch

from objectives.kernels import mmd2

COVER_SHARE = 0.1
SUCCESS_HQ = 0.5
MMD_SIGMAS = (0.1, 0.2, 0.5, 1.0, 2.0)
MMD_POINTS = 2_000


def ring_metrics(samples: np.ndarray, centres: np.ndarray, std: float,
                 reference: np.ndarray | None = None) -> dict[str, float | int | bool]:
    """The metrics above for ``samples (n, d)``; ``reference`` are fresh true samples for MMD^2."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    c = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    n, k = x.shape[0], c.shape[0]
    finite = torch.isfinite(x).all(1)
    xf = x[finite]
    if len(xf):
        near, mode = torch.cdist(xf, c).min(1)
    else:
        near, mode = torch.zeros(0, dtype=x.dtype), torch.zeros(0, dtype=torch.long)
    hq = near < 3 * std
    hq_counts = torch.bincount(mode[hq], minlength=k)
    covered = int((hq_counts >= COVER_SHARE * n / k).sum())
    hist = torch.bincount(mode, minlength=k).double()
    if hist.sum() > 0:
        p = hist / hist.sum()
        kl = float((p[p > 0] * torch.log(p[p > 0] * k)).sum())
    else:
        kl = math.log(k)
    out: dict[str, float | int | bool] = {
        "modes_covered": covered,
        "n_modes": k,
        "hq_fraction": float(hq.sum()) / n,
        "mode_kl": kl,
        "finite_fraction": float(finite.sum()) / n,
    }
    if reference is not None:
        m = min(MMD_POINTS, len(xf), len(reference))
        # float32 keeps a sweep worker's memory low (three 2000 x 2000 blocks); its sums over
        # 4M kernel values are accurate to ~1e-8, far below the differences that matter
        ref = torch.as_tensor(np.asarray(reference[:m]), dtype=torch.float32)
        out["mmd2"] = float(mmd2(xf[:m].float(), ref, MMD_SIGMAS, unbiased=True)) if m > 1 else math.nan
    out["success"] = bool(covered == k and out["hq_fraction"] >= SUCCESS_HQ)
    return out


REFERENCE_SEED_OFFSET = 10_000_019  # fresh true samples never drawn for training


def reference_samples(dataset: Any, seed: int, n: int) -> np.ndarray:
    """Fresh true samples for metrics, independent of the training set of ``seed``."""
    return dataset.sample(n, torch.Generator().manual_seed(seed + REFERENCE_SEED_OFFSET)).numpy()


def toy_metrics(samples: np.ndarray, dataset: Any, seed: int) -> dict[str, float | int | bool]:
    """`ring_metrics` of a run's samples on toy data set ``dataset`` (trained with ``seed``)."""
    return ring_metrics(samples, dataset.centres.numpy(), dataset.std, reference_samples(dataset, seed, 2_000))
