"""Counter-based draws (`core.counter`), the CUDA path of noise and batch indices, checked on
the CPU: each run keeps a stream of its own whatever its stack, a draw costs the same few
ops for any number of runs, the numbers have the right distribution, and the state resumes
exactly. The CPU's default draws stay its generators' (its numbers do not move)."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core import streams
from engine.trainer import BatchSource
from objectives import NoiseSource


class OpCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def test_a_runs_counter_noise_does_not_depend_on_its_stack():
    stack = NoiseSource([2, 8, 4], [0, 1, 2], torch.device("cpu"), counter=True)
    alone = NoiseSource([2], [0], torch.device("cpu"), counter=True)
    for _ in range(3):
        z, z0 = stack(50), alone(50)
        assert torch.equal(z[0, :, :2], z0[0]) and (z[0, :, 2:] == 0).all() and (z[2, :, 4:] == 0).all()
    assert not torch.equal(z[0, :, :2], z[1, :, :2])  # seeds differ
    assert not torch.equal(stack(50)[0], z[0])  # successive draws differ


def test_counter_draws_have_their_distribution():
    z = NoiseSource([4, 4], [0, 1], torch.device("cpu"), counter=True)(50_000)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z.abs() < 1).double().mean()) - 0.6827) < 0.005  # P(|N(0,1)| < 1)
    u = NoiseSource([4], [0], torch.device("cpu"), "uniform", counter=True)(50_000)
    assert -1 < float(u.min()) and float(u.max()) < 1 and abs(float(u.mean())) < 0.01
    assert abs(float(u.var()) - 1 / 3) < 0.01


def test_a_draw_costs_the_same_ops_for_any_number_of_runs():
    counts = []
    for runs in (2, 16):
        noise = NoiseSource([4] * runs, list(range(runs)), torch.device("cpu"), counter=True)
        batches = BatchSource(torch.randn(runs, 1000, 2), list(range(runs)), 64, torch.device("cpu"), counter=True)
        with OpCount() as mode:
            noise(64)
            batches(2)
        counts.append(mode.ops)
    assert counts[0] == counts[1] < 100  # noise and batches: about 50 and 35 ops, views included


def test_counter_batches_are_per_run_and_resume_exactly():
    sets = torch.arange(3 * 500.0).view(3, 500, 1)
    stack = BatchSource(sets, [0, 1, 2], 32, torch.device("cpu"), counter=True)
    alone = BatchSource(sets[1:2], [1], 32, torch.device("cpu"), counter=True)
    x = stack(2)
    assert x.shape == (2, 3, 32, 1) and torch.equal(x[:, 1], alone(2)[:, 0])
    assert all(((x[:, r] >= 500 * r) & (x[:, r] < 500 * (r + 1))).all() for r in range(3))
    state = stack.state_dict()
    first = stack(1)
    stack.load_state_dict(state)
    assert torch.equal(stack(1), first)


def test_the_cpu_keeps_its_generators():
    noise = NoiseSource([3], [5], torch.device("cpu"))
    assert noise.counter is None
    assert torch.equal(noise(10)[0], torch.randn(10, 3, generator=streams.generator(5, "noise")))
