"""Records as a sweep writes them, built directly for tests of the readers (analysis,
safety checks): real metrics of known samples, no training; and a fresh interpreter for
process-wide settings (`fresh_python`)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import data
import objectives
import store
from engine import RunConfig
from metrics.ring import toy_metrics

ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str, **env: str) -> str:
    """The stripped stdout of ``code`` run in a fresh interpreter from the repository root,
    with ``env`` added: for settings a process makes once (MKL's kernels, malloc's thresholds)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def write_ring_records(root, model, cells, seeds, shift=0.0):
    """Stability records of ``model`` with true ring samples (moved by ``shift``), scored by
    the real metrics, a short trace, as a sweep writes them."""
    ds = data.get("ring2d")
    for (nd, w), seed in [(c, s) for c in cells for s in seeds]:
        cfg = RunConfig(model=model, dataset="ring2d", seed=seed, steps=20, batch=64, n_samples=500, noise_dim=nd,
                        width=w)
        axes = {"noise_dim": nd, "width": w}
        samples = ds.sample(500, torch.Generator().manual_seed(seed)).numpy() + shift
        trace = pd.DataFrame({"loss_g": np.linspace(1, 0.1, 20), "pd": np.linspace(5, 50, 20),
                              "loss_d": np.linspace(1.4, 1.2, 20)})
        record = store.Record(config=cfg.to_dict(), status="ok", sweep="stability", axes=axes,
                              metrics=toy_metrics(samples, ds, seed), objective=objectives.get(model).describe(),
                              provenance=store.provenance())
        store.write(store.sweep_dir(root, "stability", cfg.to_dict(), axes), record, samples=samples, trace=trace)
