"""Every registered objective: steps run, diagnostics finite, the generator learns; stacks are exact."""
import pytest
import torch

import models.factory
import objectives
from engine import RunConfig, Trainer
from models.stacked import WidthGroups


@pytest.fixture(params=objectives.names())
def name(request):
    return request.param


def test_steps_run_with_finite_diagnostics_and_generator_changes(name):
    trainer = Trainer([RunConfig(model=name, steps=5, batch=32, seed=0, n_samples=10)])
    before = [p.detach().clone() for p in trainer.objective.generator.parameters()]
    trainer.train()
    assert trainer.trace.shape == (5, 1, len(trainer.diag_names)) and trainer.diag_names
    assert torch.isfinite(trainer.trace).all()
    after = list(trainer.objective.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_stacked_runs_reproduce_single_runs(name, float64):
    """Two seeds with different noise dims trained as one stack = each trained alone, over 20
    steps in float64. (In float32 a batched matrix product or a fused optimiser may round
    differently from an unbatched one, and GRAM-net's early kernel solve, ill-conditioned at
    initialisation, amplifies such last-bit differences into the percent range within 20
    steps on some CPUs; in float64 the same amplification leaves at most ~1e-6 (GRAM-net; the
    others agree to 1e-15), so a run that saw another's data or gradients would stand out
    by many orders of magnitude.)"""
    configs = [RunConfig(model=name, steps=20, batch=32, seed=s, noise_dim=d, n_samples=10)
               for s, d in [(0, 2), (1, 4)]]
    stack = Trainer(configs)
    stack.train()
    assert stack.trace.dtype == torch.float64
    for r, cfg in enumerate(configs):
        alone = Trainer([cfg])
        alone.train()
        torch.testing.assert_close(stack.trace[:, r], alone.trace[:, 0], rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(stack.objective.generator.run_state_dict(r, cfg.noise_dim),
                                   alone.objective.generator.run_state_dict(0, cfg.noise_dim),
                                   rtol=1e-4, atol=1e-7)


def test_unknown_hyperparameter_is_rejected():
    with pytest.raises(ValueError, match="no hyperparameter"):
        objectives.hyperparameters("gram", "toy", {"lr_typo": 1.0})


@pytest.mark.parametrize("model, key, value, message", [
    ("gram", "lr", "adam", "lr must be a finite number"),
    ("gram", "lr", float("nan"), "lr must be a finite number"),
    ("gram", "lr", -1.0, "lr must be a positive number"),
    ("gram", "df", 0, "df must be at least 1"),
    ("gram", "df", 2.5, "df must be an integer"),
    ("gram", "sigmas", (1.0, -2.0), "sigmas must be a list of positive bandwidths"),
    ("gram", "beta1", 1.0, "beta1 must be in [0, 1)"),
    ("gram", "optimizer", "sgd", "optimizer must be adam or rmsprop"),
    ("mmdgan", "n_critic", 0, "n_critic must be at least 1"),
    ("mmdgan", "lambda_rg", -1.0, "lambda_rg must be at least 0"),
])
def test_overrides_are_checked_against_their_defaults(model, key, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        objectives.hyperparameters(model, "toy", {key: value})


def test_checked_overrides_are_normalised_to_the_default_type():
    hp = objectives.hyperparameters("gram", "toy", {"lr": 1, "sigmas": 2, "df": 4})
    assert hp["lr"] == 1.0 and isinstance(hp["lr"], float) and hp["sigmas"] == (2.0,) and hp["df"] == 4
    assert RunConfig(hp=(("lr", 1),)).key() == RunConfig(hp=(("lr", 1.0),)).key()


def test_a_run_config_holds_every_resolved_hyperparameter():
    cfg = RunConfig(model="mmdgan", hp=(("lr", 1e-4),))
    assert cfg.hyperparameters == {**objectives.get("mmdgan").defaults["toy"], "lr": 1e-4}
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(model="gram").hyperparameters == objectives.get("gram").defaults["toy"]
    assert cfg.replace(hp={"clip": 0.2}).hyperparameters["lr"] == 1e-4
    assert cfg.key() != cfg.replace(steps=cfg.steps + 1).key() != cfg.replace(hp={"lr": 2e-4}).key()


def test_short_gram_training_covers_all_ring_modes():
    import data
    from metrics.ring import toy_metrics
    trainer = Trainer([RunConfig(model="gram", steps=1500, seed=0, noise_dim=4, width=100)])
    trainer.train()
    metrics = toy_metrics(trainer.outcomes()[0].samples, data.get("ring2d"), 0)
    assert metrics["modes_covered"] == 8, metrics


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "grouped"])
def test_mixed_width_stacks_reproduce_single_runs(name, float64, padded, monkeypatch):
    """Runs of different generator widths (and noise dims) in one stack equal each run
    trained alone: traces, and the stored generator weights at the run's own width (float64,
    tolerance as above). Both layouts: the narrower padded and masked (a GPU's), and one
    stacked network per width (a CPU's), here with the runs of one width apart in the stack."""
    monkeypatch.setattr(models.factory, "pads_widths", lambda device: padded)
    configs = [RunConfig(model=name, steps=10, batch=32, seed=s, noise_dim=d, width=w, n_samples=10)
               for s, d, w in [(0, 2, 20), (1, 4, 100), (2, 3, 50), (3, 2, 20)]]
    stack = Trainer(configs)
    stack.train()
    outcomes = stack.outcomes()
    for r, cfg in enumerate(configs):
        alone = Trainer([cfg])
        alone.train()
        torch.testing.assert_close(stack.trace[:, r], alone.trace[:, 0], rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(outcomes[r].generator_state, alone.outcomes()[0].generator_state,
                                   rtol=1e-4, atol=1e-7)
        assert outcomes[r].generator_state["linears.1.weight"].shape == (1, cfg.width, cfg.width)
    generator = stack.objective.generator
    if padded:
        units = generator.linears[0].weight[0, :, 20:]  # run 0's units beyond its width
        assert not units.any() and not generator.linears[1].weight[0, 20:].any()
    else:  # no run computes at a width not its own
        assert isinstance(generator, WidthGroups) and generator.groups == [[0, 3], [1], [2]]
        assert [net.linears[1].weight.shape[1:] for net in generator.nets] == [(w, w) for w in (20, 100, 50)]
