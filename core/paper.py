"""The paper's settings, one access point (Srivastava, Xu, Gutmann, Sutton, *Generative Ratio
Matching Networks*, ICLR 2020): the ring experiment's grid and length (Fig. 2 and 7) and the
image table's setting (Table 1), read once, at import, from the experiment files that run
them (`core.experiments`: ``experiments/paper-ring.toml`` and ``experiments/fid-full.toml``).
The run configuration's defaults (`engine.config`), the option table's help, the bench and
the report's claims (`analysis.claims`) read them here; nothing imports torch to know them.
"""
from __future__ import annotations

from core import experiments

_RING = experiments.shipped("paper-ring").values
_IMAGE = experiments.shipped("fid-full").values

RING_GRID = {"noise_dim": tuple(_RING["noise_dims"]), "width": tuple(_RING["widths"])}  # field -> the paper's values
RING_STEPS: int = _RING["steps"]  # generator steps: 35 epochs of 60,000 points at batch 200
RING_BATCH: int = _RING["batch"]  # real and generated points per step
SAMPLES: int = _RING["samples"]  # samples drawn and scored per run (ring metrics, FID)
IMAGE_BATCH: int = _IMAGE["batch"]  # the authors' image setting (Table 1)
IMAGE_NOISE_DIM: int = _IMAGE["noise_dims"][0]
IMAGE_STEPS: int = _IMAGE["steps"]  # the harness's full image run; the paper does not state its length
IMAGE_WIDTH: int = _IMAGE["widths"][0]
