"""The contract every objective keeps, as plain functions any test suite can call.

    from engine.contract import check_objective
    check_objective(MyObjective)        # or a registered name; raises AssertionError

Like scikit-learn's ``check_estimator``: an external package runs the same checks on its
own objective as this repository runs on the built-ins (``tests/2_objectives/test_contract.py``).
Each check trains a stack of two tiny runs through the real `engine.trainer.Trainer`, on
toy data (``ring2d``) or on a tiny synthetic image set (`IMAGE_DATASET`), and asserts:

- ``steps``: every step returns a non-empty dict of detached, finite float tensors of
  shape ``(R,)`` with the same keys in the same order; every run's generator changes;
  no run is flagged as diverged;
- ``resume``: training k steps, passing `Trainer.state_dict` through ``torch.save`` /
  ``torch.load`` into a fresh trainer and continuing gives the traces and weights of an
  uninterrupted run, bit for bit (so any state the objective keeps must be saved);
- ``reproducible``: the same seeds give bit-identical traces and weights (so all
  randomness comes from per-run seeded streams, never the global RNG);
- ``stacking``: each run of the stack matches the same run trained alone, in float64 to
  1e-9 (so losses are per run and summed, and no run sees another's data).
"""
from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

import data
from engine.config import RunConfig
from engine.trainer import Trainer
from objectives.base import Objective
from objectives.registry import REGISTRY, get, register, unregister

IMAGE_DATASET = "contract-images"
DATASETS = {"toy": "ring2d", "image": IMAGE_DATASET}
STACK = ((0, 2), (1, 3))  # (seed, noise dim) of the two stacked runs: different noise sizes on purpose
STEPS, SPLIT = 4, 2  # generator steps per check; the resume check stops and restarts after SPLIT


@dataclass(frozen=True, eq=False)
class TinyImages:
    """256 single-channel 8x8 images in [-1, 1] (one bright blob each), shared by every seed."""

    images: Tensor
    name: str = IMAGE_DATASET
    kind: str = "image"
    x_shape: tuple[int, ...] = (1, 8, 8)
    output_activation: str = "tanh"

    def train_set(self, seed: int) -> Tensor:
        return self.images  # the same tensor for every seed, as for real image data sets


@functools.cache
def tiny_images(n: int = 256) -> TinyImages:
    """The contract's image data set, built once (it is registered as `IMAGE_DATASET`)."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.rand(n, 2, 1, 1, generator=gen) * 2 - 1
    axis = torch.linspace(-1, 1, 8)
    dist2 = (axis.view(1, 8, 1) - centres[:, 0]) ** 2 + (axis.view(1, 1, 8) - centres[:, 1]) ** 2
    return TinyImages((2 * torch.exp(-dist2 / 0.2) - 1).unsqueeze(1))


def run_configs(name: str, kind: str) -> list[RunConfig]:
    """The two stacked runs every check trains: tiny batches and networks, `STEPS` steps."""
    if IMAGE_DATASET not in data.DATASETS:
        data.register(IMAGE_DATASET, tiny_images)
    return [RunConfig(model=name, dataset=DATASETS[kind], steps=STEPS, batch=16, width=16, seed=seed,
                      noise_dim=noise_dim, n_samples=16) for seed, noise_dim in STACK]


def _trainer(configs: Sequence[RunConfig], steps: int | None = None) -> Trainer:
    trainer = Trainer(configs)
    trainer.train(steps)
    return trainer


def _expect(ok: bool, name: str, kind: str, message: str) -> None:
    if not ok:
        raise AssertionError(f"{name} on {kind} data: {message}")


def _run_weights(trainer: Trainer, r: int) -> dict[str, Tensor]:
    """Run r's weights in every network, padding of the generator's input dropped."""
    noise_dim = trainer.configs[r].noise_dim
    return {f"{net_name}.{k}": v for net_name, net in trainer.objective.nets.items()
            for k, v in net.run_state_dict(r, noise_dim if net_name == "generator" else None).items()}


def _outcome(trainer: Trainer, r: int | None = None) -> dict[str, Tensor]:
    """The diagnostics trace and every network's weights: of all runs, or of run ``r`` only."""
    if r is not None:
        return {"trace": trainer.trace[:, r], **_run_weights(trainer, r)}
    return {"trace": trainer.trace, **{f"{net_name}.{k}": v for net_name, net in trainer.objective.nets.items()
                                      for k, v in net.state_dict().items()}}


def _same(a: dict[str, Tensor], b: dict[str, Tensor], name: str, kind: str, what: str, exact: bool) -> None:
    """Equal tensors under equal keys: bit for bit, or to float32 tolerance."""
    _expect(list(a) == list(b), name, kind, f"{what}: different entries {list(a)} vs {list(b)}")
    for key in a:
        if exact:
            _expect(torch.equal(a[key], b[key]), name, kind,
                    f"{what}: {key} differs by up to {float((a[key] - b[key]).abs().max()):.3g}")
        else:
            try:
                torch.testing.assert_close(a[key], b[key], rtol=1e-9, atol=1e-12)
            except AssertionError as err:
                raise AssertionError(f"{name} on {kind} data: {what}: {key} differs: {err}") from None


def _check_diagnostics(diag: object, first: dict | None, runs: int, step: int, name: str, kind: str) -> None:
    """One step's return value: a dict of detached finite float ``(R,)`` tensors, fixed keys."""
    _expect(isinstance(diag, dict) and bool(diag), name, kind,
            f"step() must return a non-empty dict of diagnostics, got {diag!r}")
    _expect(first is None or list(diag) == list(first), name, kind,
            f"step {step} returned keys {list(diag)}, step 0 returned {list(first or {})}; keep them fixed")
    for key, value in diag.items():
        _expect(isinstance(key, str) and isinstance(value, Tensor), name, kind,
                f"diagnostic {key!r} must be a tensor under a str key, got {type(value).__name__}")
        _expect(tuple(value.shape) == (runs,), name, kind,
                f"diagnostic {key!r} has shape {tuple(value.shape)}; expected ({runs},), one value per run")
        _expect(value.is_floating_point() and not value.requires_grad, name, kind,
                f"diagnostic {key!r} must be a detached float tensor (use .detach())")
        _expect(bool(torch.isfinite(value).all()), name, kind,
                f"diagnostic {key!r} is not finite at step {step}: {value.tolist()}")


def check_steps(name: str, kind: str) -> None:
    """Diagnostics are per-run, detached and finite; every run's generator learns."""
    trainer = Trainer(run_configs(name, kind))
    objective, runs = trainer.objective, trainer.runs
    per_step = objective.batches_per_step
    _expect(isinstance(per_step, int) and per_step >= 1, name, kind,
            f"batches_per_step must be a positive int, got {per_step!r}")
    for net_name, net in objective.nets.items():
        _expect(hasattr(net, "run_state_dict"), name, kind,
                f"network {net_name!r} is not a stacked network; build it with the factory")
    seen: list[dict[str, Tensor]] = []
    step = objective.step

    def checked_step(real: Tensor) -> dict[str, Tensor]:  # validates before the trainer stores it
        diag = step(real)
        _check_diagnostics(diag, seen[0] if seen else None, runs, len(seen), name, kind)
        seen.append(diag)
        return diag
    objective.step = checked_step
    before = [objective.generator.run_state_dict(r) for r in range(runs)]
    trainer.train()
    _expect(len(seen) == STEPS, name, kind, f"trained {len(seen)} of {STEPS} steps")
    for r in range(runs):
        after = objective.generator.run_state_dict(r)
        _expect(any(not torch.equal(before[r][k], after[k]) for k in after), name, kind,
                f"run {r}'s generator did not change in {STEPS} steps")
    _expect(all(d is None for d in trainer.diverged_at), name, kind, f"runs diverged: {trainer.reasons}")


def check_resume(name: str, kind: str) -> None:
    """Save after `SPLIT` steps, restore into a fresh trainer, continue: same as never stopping."""
    configs = run_configs(name, kind)
    whole = _trainer(configs)
    first = _trainer(configs, SPLIT)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = Trainer(configs)
    resumed.load_state_dict(torch.load(buffer))
    resumed.train()
    _same(_outcome(whole), _outcome(resumed), name, kind,
          "resumed run (state the objective keeps must be in its state_dict)", exact=True)


def check_reproducible(name: str, kind: str) -> None:
    """Two trainings with the same seeds agree bit for bit."""
    configs = run_configs(name, kind)
    a, b = _trainer(configs), _trainer(configs)
    _same(_outcome(a), _outcome(b), name, kind,
          "repeated run (draw randomness from per-run seeded streams, not the global RNG)", exact=True)


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Train in float64 inside the block (torch's default dtype), float32 again after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def check_stacking(name: str, kind: str) -> None:
    """Each run of a two-run stack equals that run trained alone, in float64 to 1e-9. (In
    float32 a batched product may round the last bit differently from an unbatched one, and
    ill-conditioned kernel solves such as GRAM-net's magnify that to 1e-3 within a few
    steps; in float64 only rounding remains, so a run that sees another's data or gradient
    stands out by many orders of magnitude.)"""
    configs = run_configs(name, kind)
    with float64():
        stack = _trainer(configs)
        for r, cfg in enumerate(configs):
            alone = _trainer([cfg])
            _same(_outcome(stack, r), _outcome(alone, 0), name, kind,
                  f"run {r} of a stack vs alone (losses must be per run, shape (R,), summed before backward)",
                  exact=False)


CHECKS: dict[str, Callable[[str, str], None]] = {
    "steps": check_steps, "resume": check_resume, "reproducible": check_reproducible, "stacking": check_stacking,
}
KINDS = ("toy", "image")


@contextlib.contextmanager
def registered(objective: str | type[Objective]) -> Iterator[str]:
    """The registered name of ``objective``; an unregistered class is registered meanwhile."""
    if isinstance(objective, str):
        get(objective)  # KeyError listing the known names
        yield objective
        return
    if REGISTRY.get(getattr(objective, "name", None)) is objective:
        yield objective.name
        return
    register(objective)
    try:
        yield objective.name
    finally:
        unregister(objective.name)


def check_objective(objective: str | type[Objective], kinds: Sequence[str] = KINDS,
                    checks: Sequence[str] = tuple(CHECKS)) -> None:
    """Run every contract check on ``objective`` (a registered name or an `Objective`
    subclass) for each data kind; raises ``AssertionError`` naming the first broken rule."""
    with registered(objective) as name:
        for kind in kinds:
            for check in checks:
                CHECKS[check](name, kind)
