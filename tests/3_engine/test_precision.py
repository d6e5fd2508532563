"""Opt-in reduced precision: ``RunConfig.layer_dtype = "bfloat16"`` runs the network layers
under bfloat16 autocast, keeps the kernel math, parameters and outputs float32, and is
part of a run's identity; the default trains in float32 throughout."""

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from engine import RunConfig, Trainer
from objectives import kernels


class ProductDtypes(TorchDispatchMode):
    """The dtypes of every batched product dispatched inside the block."""

    def __init__(self):
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if str(func).startswith(("aten.bmm", "aten.baddbmm")):
            self.dtypes.add(out.dtype)
        return out


def _configs(precision: str) -> list[RunConfig]:
    return [RunConfig(model="gram", steps=3, batch=32, width=16, seed=s, n_samples=50, layer_dtype=precision)
            for s in (0, 1)]


def test_precision_is_checked_and_part_of_the_identity():
    assert RunConfig().layer_dtype == "float32"
    assert RunConfig(layer_dtype="bfloat16").key() != RunConfig().key()
    assert RunConfig(layer_dtype="bfloat16").to_dict()["layer_dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="unknown layer dtype"):
        RunConfig(layer_dtype="float8")


@pytest.mark.parametrize("precision, products", [("float32", {torch.float32}),
                                                 ("bfloat16", {torch.bfloat16, torch.float32})])
def test_a_step_runs_its_products_in_the_configured_precision(precision, products):
    trainer = Trainer(_configs(precision))
    with ProductDtypes() as mode:
        trainer.train(1)
    assert mode.dtypes == products  # bfloat16: the layers; float32: the kernel math
    trainer.train()
    out = trainer.outcomes()
    assert all(o.status == "ok" and o.samples.dtype == "float32" for o in out)
    assert all(p.dtype == torch.float32 for net in trainer.objective.nets.values() for p in net.parameters())


def test_kernel_math_stays_float32_under_autocast():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 30, 3, generator=gen).bfloat16()
    y = torch.randn(2, 40, 3, generator=gen).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ratio, d2 = kernels.ratio_and_mmd2(x, y, (0.5, 1.0))
    plain_ratio, plain_d2 = kernels.ratio_and_mmd2(x.float(), y.float(), (0.5, 1.0))
    assert ratio.dtype == d2.dtype == torch.float32
    torch.testing.assert_close(ratio, plain_ratio)
    torch.testing.assert_close(d2, plain_d2)


def test_the_device_kind_is_part_of_a_runs_identity_and_its_setting():
    """CUDA's generators draw other numbers than the CPU's from one seed: the same
    configuration trained on each is a different run, recorded under another key and in
    another setting folder, so no table mixes them."""
    import store
    cpu, cuda = RunConfig(), RunConfig(device="cuda")
    assert cpu.key() != cuda.key()
    assert store.setting_dir(Path("r"), "stability", cpu.to_dict(), {}) != \
        store.setting_dir(Path("r"), "stability", cuda.to_dict(), {})
    with pytest.raises(ValueError, match="unknown device kind"):
        RunConfig(device="tpu")
