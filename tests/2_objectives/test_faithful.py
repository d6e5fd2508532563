"""Faithful to the authors: bandwidth conventions against each source's kernel formula, the
initialisation of the networks, batch-norm critics that see real and generated samples in
separate passes, and docs/defaults.md against the code."""
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import objectives
from engine import RunConfig, Trainer
from models import ArchConfig, NetFactory
from objectives import kernels

ROOT = Path(__file__).resolve().parents[2]


def squared(s):  # GRAMFlow (TensorFlow) and the GMMN code: exp(-d^2 / (2 s)), s a squared bandwidth
    return lambda d: math.exp(-d**2 / (2 * s))


def std(s):  # JuliaGRAM and Li et al.'s MMD-GAN: exp(-d^2 / (2 s^2)), s a standard deviation
    return lambda d: math.exp(-d**2 / (2 * s**2))


SOURCES = {  # (objective, kind, family): the source's kernel terms
    ("gram", "toy", ""): [std(1.0)],
    ("gram", "image", ""): [squared(s) for s in (1, 2, 4, 8, 16)],
    ("gram", "image", "mnist"): [std(s) for s in (0.1, 1, 10, 100)],
    ("mmdnet", "toy", ""): [std(1.0)],
    ("mmdnet", "image", ""): [squared(s) for s in (2, 5, 10, 20, 40, 80)],
    ("mmdnet", "image", "mnist"): [std(s) for s in (1, 5, 10)],
    ("mmdgan", "toy", ""): [std(1.0)],
    ("mmdgan", "image", ""): [std(s) for s in (1, 2, 4, 8, 16)],
}


@pytest.mark.parametrize("key", SOURCES, ids=lambda k: "-".join(filter(None, k)))
def test_every_bandwidth_list_follows_its_sources_convention(key):
    model, kind, family = key
    sigmas = objectives.hyperparameters(model, kind, family=family)["sigmas"]
    for d in (0.5, 1.0, 4.0, 20.0):
        ours = float(kernels.gaussian_gram(torch.zeros(1, 1, dtype=torch.float64),
                                           torch.full((1, 1), d, dtype=torch.float64), sigmas))
        assert ours == pytest.approx(sum(k(d) for k in SOURCES[key]), rel=1e-12, abs=1e-30), d  # exp(-80) floor
    if key == ("gram", "image", ""):  # the example: 1.13 at distance 4, not 2.59
        at4 = float(kernels.gaussian_gram(torch.zeros(1, 1), torch.full((1, 1), 4.0), sigmas))
        assert at4 == pytest.approx(1.13, abs=0.01)


def test_ring_mlps_start_from_glorot_uniform_weights_and_zero_biases():
    """Flux's Dense default (the authors' ring code): U(+-sqrt(6 / (fan_in + fan_out))),
    biases 0; a run's padded noise rows stay 0 and its bound uses its true fan-in."""
    factory = NetFactory(ArchConfig(width=100), (2,), noise_dims=[2, 16], seeds=[0, 1])
    gen = factory.generator()
    first = gen.linears[0].weight.detach()
    for r, fan_in in enumerate((2, 16)):
        bound = math.sqrt(6 / (fan_in + 100))
        w = first[r, :fan_in]
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.95 * bound
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)  # uniform's std
        assert not first[r, fan_in:].any()
    assert math.sqrt(6 / (2 + 100)) == pytest.approx(0.2425, abs=1e-4)  # vs 0.71 = 1/sqrt(2) of torch's default
    for lin in [*gen.linears, *factory.critic(10, "projector").linears]:
        assert not lin.bias.any()


def test_conv_networks_start_from_normal_002():
    factory = NetFactory(ArchConfig(arch="dcgan", width=16), (1, 16, 16), noise_dims=[8], seeds=[0])
    for net in (factory.generator(), factory.critic(4)):
        net.requires_grad_(False)
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                assert float(m.weight.std()) == pytest.approx(0.02, rel=0.25) and abs(float(m.weight.mean())) < 0.01
                assert m.bias is None or not m.bias.any()
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                assert float((m.weight - 1).abs().max()) < 0.1 and not m.bias.any()


class Spy:
    """Records what a stacked critic network is called with and what it returns."""

    def __init__(self, net):
        self.calls = []
        net.register_forward_hook(lambda mod, inp, out: self.calls.append((inp[0].detach(), out.detach())))


CRITICS = {"gan": "discriminator", "gram": "projector", "mmdgan": "encoder", "wgangp": "critic"}


@pytest.mark.parametrize("model", sorted(CRITICS))
def test_a_batch_norm_critic_sees_real_and_generated_samples_separately(model):
    """The critic's features of the real batch do not depend on the generated batch: the
    same step from the same state with other noise gives the same real-batch features
    (they would differ if real and generated samples shared a batch-norm pass). On 28 x 28
    digits the DCGAN critics have batch norm (on 8 x 8 images they are too shallow for any)."""
    features = []
    for noise_seed in (1, 2):
        trainer = Trainer([RunConfig(model=model, dataset="mnist5k", arch="dcgan", width=8, batch=16,
                                     noise_dim=4, steps=1, n_samples=16)])
        obj = trainer.objective
        has_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in obj.nets[CRITICS[model]].modules())
        assert has_batch_norm or model == "wgangp"  # WGAN-GP's critic has none (its gradient penalty)
        real = trainer.batches(obj.batches_per_step)
        obj.noise.generators[0].manual_seed(noise_seed)
        spy = Spy(obj.nets[CRITICS[model]])
        obj.step(real)
        real_calls = [out for inp, out in spy.calls if inp.shape == real[0].shape and torch.equal(inp, real[0])]
        assert real_calls, "the critic is never called on the real batch alone"
        assert all(inp.shape[1] == real.shape[2] for inp, _ in spy.calls), "a call mixes batches"
        features.append(real_calls[0])
    torch.testing.assert_close(features[0], features[1], rtol=0, atol=0)


def test_wgangp_critic_has_no_batch_norm_on_images():
    trainer = Trainer([RunConfig(model="wgangp", dataset="mnist5k", arch="dcgan", width=8, noise_dim=4, steps=1)])
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in trainer.objective.critic.modules())
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in trainer.objective.generator.modules())


BUILT_INS = ("gan", "mmdnet", "mmdgan", "gram", "wgangp")


def documented_rows() -> dict[tuple[str, str, str], tuple[str, str]]:
    """The rows ``| objective | data | hyperparameter | value | source |`` of docs/defaults.md,
    as ``(objective, data, hyperparameter) -> (value, source)``."""
    rows = {}
    for line in (ROOT / "docs" / "defaults.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] in objectives.names():
            rows[(cells[0], cells[1], cells[2])] = (cells[3], cells[4])
    return rows


def code_defaults(model: str) -> dict[str, dict]:
    """``{data: hyperparameters}`` of a built-in as the table names the data: ``toy``,
    ``image`` and ``image (family)`` (a family's refinements only)."""
    cls = objectives.get(model)
    return {**{k: cls.defaults[k] for k in ("toy", "image")},
            **{f"image ({f})": v for f, v in cls.dataset_defaults.items()}}


def test_docs_defaults_table_matches_the_code():
    """Every default of every built-in objective, per data kind and family, is in the table
    with the value the code uses (written as Python writes it, tuples as lists), and the
    table has no row the code does not have (a stale default)."""
    documented = documented_rows()
    for model in BUILT_INS:
        for where, hp in code_defaults(model).items():
            for key, value in hp.items():
                shown, _ = documented.get((model, where, key), (None, None))
                assert shown is not None, f"{model} {where} {key} missing from docs/defaults.md"
                expected = value if not isinstance(value, tuple) else [round(v, 4) for v in value]
                got = eval(shown, {"sqrt": math.sqrt})  # noqa: S307 - our own doc
                got = [round(v, 4) for v in got] if isinstance(got, list | tuple) else got
                assert got == expected, f"{model} {where} {key}: docs say {shown}, code has {value}"
    stale = [row for row in documented if row[0] in BUILT_INS and row[2] not in code_defaults(row[0]).get(row[1], {})]
    assert not stale, f"docs/defaults.md documents defaults the code does not have: {stale}"


def test_docs_name_the_code_each_gram_form_follows():
    """GRAM-net's ``form`` row names, as its source, the code the form is named after: GRAMFlow
    (the TensorFlow code behind Table 1) on images, JuliaGRAM on rings and MNIST."""
    sources = {"gramflow": "GRAMFlow", "julia": "Julia"}
    documented = documented_rows()
    forms = {where: hp["form"] for where, hp in code_defaults("gram").items() if "form" in hp}
    assert forms == {"toy": "julia", "image": "gramflow", "image (mnist)": "julia"}
    for where, form in forms.items():
        _, source = documented[("gram", where, "form")]
        assert source.startswith(sources[form]), f"gram {where} form {form!r}: the docs cite {source!r}"


def test_docs_defaults_table_names_a_source_for_every_row():
    for line in (ROOT / "docs" / "defaults.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].strip("`") in objectives.names():
            assert re.search(r"\w", cells[4]), line

