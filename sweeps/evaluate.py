"""Turn a finished run into a stored record: metrics on its samples, then an atomic write."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import data
from analysis.ring_metrics import ring_metrics
from sweeps.records import provenance, write_record
from sweeps.runner import RunOutcome

REFERENCE_SEED_OFFSET = 10_000_019  # fresh true samples never drawn for training


def reference_samples(dataset: Any, seed: int, n: int) -> np.ndarray:
    """Fresh true samples for metrics, independent of the training set of ``seed``."""
    return dataset.sample(n, torch.Generator().manual_seed(seed + REFERENCE_SEED_OFFSET)).numpy()


def outcome_metrics(outcome: RunOutcome, dataset: Any) -> dict[str, Any]:
    """Mode metrics for toy data (see `analysis.ring_metrics`); images are scored elsewhere (FID)."""
    if getattr(dataset, "kind", None) != "toy":
        return {}
    ref = reference_samples(dataset, outcome.config.seed, 2_000)
    return ring_metrics(outcome.samples, dataset.centres.numpy(), dataset.std, ref)


def save_outcome(outcome: RunOutcome, path: Path, extra_record: dict[str, Any] | None = None,
                 extra_files: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Compute metrics and write the run's record directory atomically; returns the record."""
    dataset = data.get(outcome.config.dataset)
    metrics = outcome_metrics(outcome, dataset)
    record = {
        "config": outcome.config.to_dict(),
        "seed": outcome.config.seed,
        "status": outcome.status,
        "reason": outcome.reason,
        "diverged_at": outcome.diverged_at,
        "metrics": metrics,
        "device": outcome.device,
        "wall_time_s": outcome.wall_time,
        "stack_size": outcome.stack_size,
        "provenance": provenance(),
        **(extra_record or {}),
    }
    trace = pd.DataFrame(outcome.trace, columns=outcome.diag_names).dropna(how="all")

    def add_files(tmp: Path) -> None:
        if outcome.snapshots:
            np.savez_compressed(tmp / "snapshots.npz", **outcome.snapshots)
        if extra_files is not None:
            extra_files(tmp)
    write_record(path, record, outcome.samples, trace, outcome.generator_state, add_files)
    return record
