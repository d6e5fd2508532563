"""The objective contract (`engine.contract`) on every registered objective, future ones
included, and on deliberately broken objectives, to show each check catches what it claims."""
from pathlib import Path

import pytest
import torch
from torch import Tensor

import objectives
from engine import contract
from objectives import Objective

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("check", list(contract.CHECKS))
@pytest.mark.parametrize("kind", contract.KINDS)
@pytest.mark.parametrize("name", objectives.names())
def test_objective_keeps_the_contract(name, kind, check):
    contract.CHECKS[check](name, kind)


class MeanMatch(Objective):
    """A minimal valid objective: each run's generator matches its own batch mean."""

    name = "contract-test-meanmatch"
    defaults = {"toy": {"lr": 1e-2}, "image": {"lr": 1e-2}}

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.opt = self.add_optimizer("generator", self.generator.parameters())

    def fake(self, n: int) -> Tensor:
        return self.generator(self.noise(n))

    def loss(self, x: Tensor, fake: Tensor) -> Tensor:
        return (fake.mean(1) - x.mean(1)).pow(2).flatten(1).sum(-1)

    def diagnostics(self, loss: Tensor) -> dict[str, Tensor]:
        return {"loss": loss.detach()}

    def step(self, real: Tensor) -> dict[str, Tensor]:
        loss = self.loss(real[0], self.fake(real.shape[2]))
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        return self.diagnostics(loss)


class ScalarDiagnostics(MeanMatch):
    name = "contract-test-scalar"

    def diagnostics(self, loss):
        return {"loss": loss.sum().detach()}


class AttachedDiagnostics(MeanMatch):
    name = "contract-test-attached"

    def diagnostics(self, loss):
        return {"loss": loss}


class FrozenGenerator(MeanMatch):
    name = "contract-test-frozen"

    def step(self, real):
        return self.diagnostics(self.loss(real[0], self.fake(real.shape[2])))


class ForgetsState(MeanMatch):
    """Keeps a step counter that its state_dict does not save."""

    name = "contract-test-forgets"
    calls = 0

    def loss(self, x, fake):
        self.calls += 1
        return super().loss(x, fake) * self.calls


class GlobalRandomness(MeanMatch):
    name = "contract-test-global-rng"

    def fake(self, n):
        out = super().fake(n)
        return out + 0.1 * torch.randn_like(out)


class PooledRuns(MeanMatch):
    """Matches the mean over every run's batch: runs see each other's data."""

    name = "contract-test-pooled"

    def loss(self, x, fake):
        return super().loss(x.mean(0, keepdim=True).expand_as(x), fake)


def test_a_minimal_objective_passes_and_is_unregistered_afterwards():
    contract.check_objective(MeanMatch)
    assert MeanMatch.name not in objectives.names()


@pytest.mark.parametrize("cls, check, message", [
    (ScalarDiagnostics, "steps", r"shape \(\); expected \(2,\)"),
    (AttachedDiagnostics, "steps", "detached"),
    (FrozenGenerator, "steps", "generator did not change"),
    (ForgetsState, "resume", "resumed run .*: trace differs"),
    (GlobalRandomness, "reproducible", "repeated run .*: trace differs"),
    (PooledRuns, "stacking", "run 0 of a stack vs alone"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_each_check_catches_its_violation(cls, check, message):
    if check != "steps":  # well-formed otherwise: only the targeted rule is broken
        contract.check_objective(cls, kinds=["toy"], checks=["steps"])
    with pytest.raises(AssertionError, match=message):
        contract.check_objective(cls, kinds=["toy"], checks=[check])
    assert cls.name not in objectives.names()


def test_an_external_plugin_can_reuse_the_suite(monkeypatch):
    """The documented route for a plugin's own tests: load it, then check it by name."""
    name, = objectives.load_plugin(str(ROOT / "examples" / "lsgan.py"))
    try:
        contract.check_objective(name, kinds=["toy"])
    finally:
        objectives.registry.unregister(name)
