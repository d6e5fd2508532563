"""The EMA generator (engine.ema): in a stack it is, run by run, the plain moving average of
that run's weights; with decay 0 it is the generator itself; it survives a checkpoint; a
record keeps its samples and metrics beside the raw generator's; bad decays are refused."""
import copy

import numpy as np
import pytest
import torch

import store
from engine import RunConfig, Trainer
from engine.ema import GeneratorEMA
from sweeps import train

pytestmark = pytest.mark.usefixtures("isolated_registry")
RUNS = [RunConfig(model="gram", width=20, noise_dim=d, seed=s, steps=40, batch=32, n_samples=300, ema=0.9)
        for d, s in ((2, 0), (4, 1))]


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def run_weights(generator: torch.nn.Module, r: int, config: RunConfig) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in generator.run_state_dict(r, config.noise_dim).items()}


def test_a_stacked_ema_is_each_runs_plain_moving_average(float64):
    """Two runs of different noise dimensions and seeds (the narrower one padded): after
    every step, run r's slice of the average equals ema = d * ema + (1 - d) * w over run r's
    own (unpadded) weights, to float64 rounding."""
    trainer = Trainer(RUNS)
    gen, decay = trainer.objective.generator, RUNS[0].ema
    plain = [run_weights(gen, r, c) for r, c in enumerate(RUNS)]
    for _ in range(RUNS[0].steps):
        trainer.train(1)
        for r, c in enumerate(RUNS):
            plain[r] = {k: decay * plain[r][k] + (1 - decay) * w for k, w in run_weights(gen, r, c).items()}
    ema, raw = run_weights(trainer.ema.model, 0, RUNS[0]), run_weights(gen, 0, RUNS[0])
    assert not torch.equal(ema["linears.0.weight"], raw["linears.0.weight"])  # the average is not the generator
    for r, c in enumerate(RUNS):
        stacked = run_weights(trainer.ema.model, r, c)
        assert stacked.keys() == plain[r].keys()
        for k in stacked:
            torch.testing.assert_close(stacked[k], plain[r][k], rtol=1e-12, atol=1e-14)


def test_with_decay_0_the_ema_samples_are_the_raw_samples():
    configs = [c.replace(ema=0.0) for c in RUNS]
    trainer = Trainer(configs)
    assert trainer.ema is None  # 0: off
    trainer.ema = GeneratorEMA(trainer.objective.generator, 0.0)
    trainer.train()
    assert torch.equal(trainer.sample(300, ema=True), trainer.sample(300))


def test_the_ema_survives_a_checkpoint_and_resume():
    """Train 20 steps, checkpoint (state_dict), rebuild, load, train 20 more: the average
    and its samples equal those of 40 steps in one go, bit for bit."""
    whole = Trainer(RUNS)
    whole.train()
    first = Trainer(RUNS)
    first.train(20)
    state = copy.deepcopy(first.state_dict())
    resumed = Trainer(RUNS)
    resumed.load_state_dict(state)
    resumed.train()
    for a, b in zip(whole.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(whole.sample(300, ema=True), resumed.sample(300, ema=True))
    assert not torch.equal(whole.sample(300, ema=True), whole.sample(300))


def test_a_record_keeps_the_ema_samples_and_metrics_beside_the_raw_ones(tmp_path):
    assert train.main(["--models", "gram", "--dataset", "ring2d", "--noise-dims", "2", "--widths", "20", "--steps",
                       "100", "--batch", "32", "--samples", "500", "--ema", "0.95", "--out", str(tmp_path)]) == 0
    out, = store.record_dirs(tmp_path)
    record = store.read(out)
    assert record.config["ema"] == 0.95
    raw = {k for k in record.metrics if not k.startswith("ema_")}
    assert raw and {f"ema_{k}" for k in raw} == set(record.metrics) - raw
    assert {"samples.npy", "samples_ema.npy"} <= set(record.files)
    ema, samples = store.load_samples(out, ema=True), store.load_samples(out)
    assert ema.shape == samples.shape and not np.array_equal(ema, samples)
    assert RunConfig().key() != RunConfig(ema=0.95).key()


@pytest.mark.parametrize("decay", ["1", "-0.1", "nan"])
def test_a_decay_outside_0_to_1_is_refused(tmp_path, capsys, decay):
    with pytest.raises(SystemExit) as exit_:
        train.main(["--ema", decay, "--steps", "10", "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--ema must be in [0, 1)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
