"""Random streams by role (`core.streams`): every (seed, role) pair gets its own stream, so
the seeds of a study are independent draws."""
import itertools

import numpy as np
import pytest
import torch

import objectives
from core import streams
from engine.config import RunConfig
from engine.trainer import Trainer


def test_streams_of_a_thousand_seeds_and_every_role_are_all_distinct():
    roles = list(streams.ROLES)
    seeds = {streams.stream_seed(s, r) for s, r in itertools.product(range(1000), roles)}
    assert len(seeds) == 1000 * len(roles)
    # and the streams themselves, not only their seeds: the first draws differ pairwise
    first = {tuple(torch.randint(2**62, (2,), generator=streams.generator(s, r)).tolist())
             for s, r in itertools.product(range(1000), roles)}
    assert len(first) == 1000 * len(roles)


def test_the_old_collision_is_gone():
    """Seed 1's training noise was seed 0's final-sample noise (torch seed 7,920 both)."""
    train_1 = objectives.NoiseSource([4], [1], torch.device("cpu"))(64)
    final_0 = objectives.NoiseSource([4], [0], torch.device("cpu"), role="samples")(64)
    probe_0 = objectives.NoiseSource([4], [0], torch.device("cpu"), role="probe")(64)
    train_2 = objectives.NoiseSource([4], [2], torch.device("cpu"))(64)
    assert not torch.equal(train_1, final_0)
    assert not torch.equal(train_2, probe_0)


def test_streams_are_stable_across_processes_and_reject_unknown_roles():
    assert streams.stream_seed(0, "noise") == streams.stream_seed(0, "noise")  # pure function of its inputs
    assert streams.stream_seed(0, "noise") < 2**63
    with pytest.raises(ValueError, match="unknown random stream role"):
        streams.stream_seed(0, "nosie")
    with pytest.raises(ValueError, match="non-negative"):
        streams.stream_seed(-1, "noise")
    assert streams.stream_seed(0, "init/hinge-critic") != streams.stream_seed(0, "init/critic")


def test_no_seed_arithmetic_outside_core(tmp_path):
    """No module derives a stream by adding to or multiplying a seed; everything goes through
    `core.streams`."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"seed\w*\)?\s*[*+]\s*\d|\d\s*[*+]\s*\w*seed|manual_seed\(\s*\d{3,}")
    bad = [f"{p.relative_to(root)}:{i}" for p in root.glob("*/**/*.py") if ".venv" not in p.parts
           and p.parts[len(root.parts)] not in ("tests", "core")
           for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert bad == []


def test_a_runs_streams_do_not_depend_on_its_stack_neighbours():
    cfg = dict(model="gram", dataset="ring2d", noise_dim=2, width=20, steps=3, batch=16, n_samples=50)
    alone = Trainer([RunConfig(seed=1, **cfg)])
    stacked = Trainer([RunConfig(seed=0, **cfg), RunConfig(seed=1, **cfg)])
    assert torch.equal(alone.noise(5)[0], stacked.noise(5)[1])
    assert torch.equal(alone.batches(1)[:, 0], stacked.batches(1)[:, 1])
    assert not np.array_equal(stacked.train_sets[0].numpy(), stacked.train_sets[1].numpy())
