"""Toy data: geometry as documented and reproducible sampling."""
import math

import pytest
import torch

import data


@pytest.mark.parametrize("name", ["ring2d", "ring3d", "grid"])
def test_sampling_is_seeded(name):
    ds = data.get(name)
    a, b = ds.train_set(3), ds.train_set(3)
    assert torch.equal(a, b) and not torch.equal(a, ds.train_set(4))
    assert a.shape == (60_000, *ds.x_shape)


def test_ring2d_geometry_and_spread():
    ds = data.get("ring2d")
    assert ds.n_modes == 8 and ds.std == 0.2
    torch.testing.assert_close(ds.centres.norm(dim=1), torch.full((8,), 2.0))
    x = ds.sample(40_000, torch.Generator().manual_seed(0))
    mode = torch.cdist(x, ds.centres).argmin(1)
    resid = x - ds.centres[mode]
    assert resid.std(0).tolist() == pytest.approx([0.2, 0.2], abs=0.01)
    assert torch.bincount(mode, minlength=8).float().div(len(x)).sub(1 / 8).abs().max() < 0.01


def test_ring3d_is_tilted_ring_with_thin_noise():
    ds = data.get("ring3d")
    c = ds.centres
    torch.testing.assert_close(c.norm(dim=1), torch.full((8,), 2.0))
    normal = torch.tensor([0.0, -math.sin(math.pi / 3), math.cos(math.pi / 3)])  # rotated z-axis
    torch.testing.assert_close(c @ normal, torch.zeros(8), atol=1e-6, rtol=0)
    x = ds.sample(40_000, torch.Generator().manual_seed(0))
    assert float((x @ normal).std()) == pytest.approx(0.1, abs=0.01)


def test_grid_has_25_modes():
    ds = data.get("grid")
    assert ds.n_modes == 25 and set(ds.centres[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_unknown_dataset_names_choices():
    with pytest.raises(KeyError, match="ring2d"):
        data.get("nope")
