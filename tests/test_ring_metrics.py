"""Ring metrics on samples whose answer is known."""
import math

import numpy as np
import pytest
import torch

import data
from metrics.ring import ring_metrics


@pytest.fixture
def ring():
    return data.get("ring2d")


def test_true_samples_score_perfectly(ring):
    x = ring.sample(10_000, torch.Generator().manual_seed(0)).numpy()
    ref = ring.sample(2_000, torch.Generator().manual_seed(1)).numpy()
    m = ring_metrics(x, ring.centres.numpy(), ring.std, ref)
    assert m["modes_covered"] == 8 and m["success"]
    assert m["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)  # P(chi_2 < 3)
    assert m["mode_kl"] < 0.002 and abs(m["mmd2"]) < 0.002


def test_collapsed_samples_fail(ring):
    x = np.tile(ring.centres.numpy()[:1], (10_000, 1))
    ref = ring.sample(2_000, torch.Generator().manual_seed(1)).numpy()
    m = ring_metrics(x, ring.centres.numpy(), ring.std, ref)
    assert m["modes_covered"] == 1 and m["hq_fraction"] == 1.0 and not m["success"]
    assert m["mode_kl"] == pytest.approx(math.log(8))
    assert m["mmd2"] > 0.1


def test_smeared_samples_cover_modes_but_are_low_quality(ring):
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 10_000)
    radius = np.random.default_rng(1).uniform(1.0, 3.0, 10_000)
    x = np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)
    m = ring_metrics(x, ring.centres.numpy(), ring.std)
    assert m["modes_covered"] == 8 and m["hq_fraction"] < 0.5 and not m["success"]


def test_non_finite_samples_are_never_high_quality(ring):
    x = ring.sample(1_000, torch.Generator().manual_seed(0)).numpy()
    x[:500] = np.nan
    m = ring_metrics(x, ring.centres.numpy(), ring.std)
    assert m["finite_fraction"] == 0.5 and m["hq_fraction"] < 0.5
