"""Training steps as CUDA graphs (`engine.graphs`): replayed steps equal eager ones for every
objective (on a GPU), and a capture that fails falls back to eager training from a rebuilt
copy of the state, with one line saying why (anywhere)."""
import pytest
import torch

import objectives
from engine import RunConfig, Trainer
from engine.contract import float64
from engine.graphs import WARMUP_STEPS

CUDA = torch.cuda.is_available()


def stack(model: str, steps: int) -> list[RunConfig]:
    return [RunConfig(model=model, steps=steps, batch=64, seed=s, noise_dim=d, width=w, n_samples=100)
            for s, d, w in [(0, 2, 20), (1, 4, 100), (2, 8, 100)]]


def test_a_failed_capture_falls_back_to_eager_training_from_the_same_state(capsys):
    """On the CPU a capture always fails: the trainer says so once and its numbers are those
    of a trainer that never tried (the warm-up steps before the attempt included)."""
    configs = stack("wgangp", 12)
    eager, tried = Trainer(configs, graphs=False), Trainer(configs, graphs=True)
    eager.train()
    tried.train()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("CUDA graph capture failed (") and err[0].endswith("training eagerly")
    assert not tried.graphs and tried.captured is None
    torch.testing.assert_close(tried.trace, eager.trace, rtol=0, atol=0)
    for a, b in zip(tried.objective.generator.parameters(), eager.objective.generator.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("model", objectives.names())
def test_graph_replay_equals_eager_steps(model):
    """In float64 the replayed steps compute what eager steps compute: the warm-up steps
    (eager on both sides) bit for bit, the first replayed steps to float64 rounding. Only a
    few steps: GRAM-net's projector magnifies a last-bit difference to 1e-5 within three
    steps even in float64, so a long run would test its conditioning, not the graph."""
    with float64():
        configs = stack(model, WARMUP_STEPS + 3)
        eager, graphed = Trainer(configs, "cuda", graphs=False), Trainer(configs, "cuda", graphs=True)
        eager.train()
        graphed.train()
    assert graphed.captured is not None, "the step was not captured"
    assert torch.equal(graphed.trace[:WARMUP_STEPS], eager.trace[:WARMUP_STEPS])
    torch.testing.assert_close(graphed.trace, eager.trace, rtol=1e-9, atol=1e-12)
    for (name, a), b in zip(graphed.objective.generator.state_dict().items(),
                            eager.objective.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    # the random streams (counter-based on CUDA) advanced exactly as eager mode's did
    streams = [(t.noise, t.batches, *t.objective.random_streams()) for t in (graphed, eager)]
    for g, e in zip(*streams):
        assert all(torch.equal(a, b) for a, b in zip(g.state_dict(), e.state_dict()))
