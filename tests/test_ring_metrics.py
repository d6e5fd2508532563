"""Ring metrics on samples whose answer is known: the four cases of the success rule (true
samples succeed; a smear, a collapse and twice the std fail), both coverage rules, the
anisotropic 3-D ring, and the mode KL of high-quality samples."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2

import data
from metrics.ring import ring_metrics, toy_metrics


@pytest.fixture(params=["ring2d", "ring3d"])
def ring(request):
    return data.get(request.param)


def scored(ring, x):
    return toy_metrics(np.asarray(x), ring, seed=0)


def true_samples(ring, n=10_000, seed=0, scale=1.0):
    """Samples of the mixture with its noise scaled by ``scale`` (1: the data itself)."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.randint(ring.n_modes, (n,), generator=gen)
    eps = torch.randn(n, ring.centres.shape[1], generator=gen)
    return (ring.centres[k] + scale * eps @ ring.noise_matrix.T).numpy()


def test_true_samples_succeed(ring):
    m = scored(ring, true_samples(ring))
    dim = ring.centres.shape[1]
    assert m["success"] and m["modes_covered"] == m["modes_covered_strict"] == 8
    assert m["hq_fraction"] == pytest.approx(chi2.cdf(9, dim), abs=0.005)  # P(chi_D^2 < 3^2): 0.989, 0.971
    assert 1.0 < m["spread"] < 1.15  # 1, plus the widest of many directions' sampling noise
    assert m["mode_kl"] < 0.002 and abs(m["mmd2"]) < 0.002


def test_samples_with_twice_the_std_fail(ring):
    m = scored(ring, true_samples(ring, scale=2.0))
    assert 2.0 < m["spread"] < 2.3 and m["modes_covered_strict"] == 8 and not m["success"]


def test_samples_piled_on_every_centre_fail(ring):
    """Every mode covered, but by points with none of the data's spread (a collapse within
    each mode) fails the lower bound."""
    m = scored(ring, true_samples(ring, scale=0.1))
    assert m["modes_covered_strict"] == 8 and m["hq_fraction"] == 1.0 and m["spread"] < 0.15 and not m["success"]


def test_collapsed_samples_fail(ring):
    m = scored(ring, np.tile(ring.centres.numpy()[:1], (10_000, 1)))
    assert m["modes_covered"] == m["modes_covered_strict"] == 1 and m["hq_fraction"] == 1.0 and not m["success"]
    assert m["mode_kl"] == pytest.approx(math.log(8)) and m["mmd2"] > 0.1


def test_a_smear_along_the_ring_covers_every_mode_but_fails(ring):
    """Samples spread uniformly along the ring itself (no noise off it): every mode gets
    plenty of high-quality samples (hq ~0.75, which the old hq >= 0.5 rule called a
    success), but along the ring they scatter about 3 times as widely as the data."""
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 10_000)
    flat = 2.0 * np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1)
    x = flat[:, :2] if ring.name == "ring2d" else flat @ rotation(ring).T
    m = scored(ring, x)
    assert m["modes_covered_strict"] == 8 and m["hq_fraction"] > 0.5 and m["mode_kl"] < 0.01
    assert 2.7 < m["spread"] < 3.3 and not m["success"]


def rotation(ring):
    """The 3-D ring's rotation (its noise matrix divided by the per-axis std)."""
    return ring.noise_matrix.numpy() / np.array([0.2, 0.2, 0.1])


def test_pacgan_coverage_counts_a_single_high_quality_sample():
    ring = data.get("ring2d")
    x = np.concatenate([np.tile(ring.centres.numpy()[:1], (9_990, 1)), ring.centres.numpy()[1:3].repeat(5, 0)])
    m = scored(ring, x)
    assert m["modes_covered"] == 3 and m["modes_covered_strict"] == 1


def test_ring3d_high_quality_respects_the_thin_axis():
    """A point 0.25 off a centre is within 3 std in the ring's plane (std 0.2) but not
    across it (std 0.1): the distance is Mahalanobis, not Euclidean."""
    ring = data.get("ring3d")
    rot, centre = rotation(ring), ring.centres.numpy()[0]
    in_plane, across = centre + rot @ [0, 0.25, 0], centre + rot @ [0, 0, 0.35]
    assert scored(ring, in_plane[None])["hq_fraction"] == 1.0
    assert scored(ring, across[None])["hq_fraction"] == 0.0


def test_mode_kl_uses_high_quality_samples_only():
    """Far-off samples that happen to be nearest one mode do not unbalance the histogram."""
    ring = data.get("ring2d")
    x = np.concatenate([true_samples(ring, 8_000), np.tile([[30.0, 0.0]], (2_000, 1))])
    m = scored(ring, x)
    assert m["mode_kl"] < 0.01 and m["hq_fraction"] == pytest.approx(0.8 * 0.989, abs=0.01)


def test_non_finite_samples_are_never_high_quality():
    ring = data.get("ring2d")
    x = true_samples(ring, 1_000)
    x[:500] = np.nan
    m = ring_metrics(x, ring.centres.numpy(), ring.noise_matrix.numpy())
    assert m["finite_fraction"] == 0.5 and m["hq_fraction"] < 0.5 and not m["success"]
