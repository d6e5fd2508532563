"""The paper's settings, stated once (Srivastava, Xu, Gutmann, Sutton, *Generative Ratio
Matching Networks*, ICLR 2020): the ring experiment's grid and length (Fig. 2 and 7) and the
image table's setting (Table 1). The stability sweep's presets, the image sweep's presets,
the bench, the run configuration's defaults (`engine.config`) and the report's claims
(`analysis.claims`) read them here; nothing imports torch to know them.
"""
from __future__ import annotations

RING_GRID = {"noise_dim": (2, 4, 8, 16), "width": (20, 100, 200)}  # run field -> the values the paper sweeps
RING_STEPS = 10_500  # generator steps: 35 epochs of 60,000 points at batch 200
RING_BATCH = 200  # real and generated points per step
IMAGE_BATCH = 64  # the authors' image setting (Table 1)
IMAGE_NOISE_DIM = 128
IMAGE_STEPS = 30_000  # the harness's full image run; the paper does not state its length
IMAGE_WIDTH = 128
SAMPLES = 10_000  # samples drawn and scored per run (ring metrics, FID)
