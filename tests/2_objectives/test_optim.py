"""Optimiser plumbing: gradients stored by `set_grads` are applied to the right elements, a
run's Adam update does not depend on where its slice sits in a stacked tensor, and `FlatAdam`
is torch's Adam bit for bit."""

import copy

import pytest
import torch
from torch import nn

from objectives.base import fused_devices, make_optimizer, set_grads
from objectives.flat_adam import FlatAdam


def _adam_after(grads_as_given: bool, param_layout_transposed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Three fused-Adam steps on a loss whose gradient autograd returns non-contiguous, through
    `set_grads`; and the same steps of plain (per-tensor) Adam fed the gradient contiguously."""
    start = torch.arange(105.0).view(3, 5, 7).cos()
    if param_layout_transposed:  # a parameter laid out in memory as (3, 7, 5)
        start = start.mT.contiguous().mT
    p, q = nn.Parameter(start.clone()), nn.Parameter(start.contiguous())
    fused = torch.optim.Adam([p], lr=0.1, fused=True)
    plain = torch.optim.Adam([q], lr=0.1, foreach=False)
    coef = torch.arange(105.0).view(3, 7, 5).sin().mT  # a transposed view: d(loss)/dp comes out laid out like it
    for _ in range(3):
        (grad,) = torch.autograd.grad((p * coef).sum(), [p])
        assert grad.stride() != p.stride() or param_layout_transposed, "the test needs a non-contiguous gradient"
        if grads_as_given:
            p.grad = grad
        else:
            set_grads((p * coef).sum(), [p])
        fused.step()
        q.grad = coef.contiguous()  # d(loss)/dq, contiguous
        plain.step()
    return p.detach(), q.detach()


def test_set_grads_makes_a_noncontiguous_gradient_update_like_plain_adam():
    p, q = _adam_after(grads_as_given=False, param_layout_transposed=False)
    torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    # the failure set_grads prevents: the fused kernel walks parameter and gradient memory in step
    p_bad, q_bad = _adam_after(grads_as_given=True, param_layout_transposed=False)
    assert (p_bad - q_bad).abs().max() > 0.1


def test_set_grads_follows_a_noncontiguous_parameter_layout():
    p, q = _adam_after(grads_as_given=False, param_layout_transposed=True)
    torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_adam_is_fused_only_where_each_element_is_updated_alike():
    assert "cpu" not in fused_devices()
    opt = make_optimizer([nn.Parameter(torch.zeros(2, 3))], "adam", 1e-3)
    assert isinstance(opt, FlatAdam)  # the per-tensor arithmetic, over one flat tensor


def test_a_runs_adam_update_does_not_depend_on_its_place_in_the_stack():
    """Run r of a stacked (R, 1, n) bias gets bit for bit the update it gets alone, for sizes
    whose slices fall in a vectorised body in one tensor and a scalar tail in the other (the
    CPU's fused kernel rounds those two differently)."""
    torch.manual_seed(0)
    for n in (1, 2, 3, 5, 10):
        start, grads = torch.randn(4, 1, n, dtype=torch.float64) * 1e-3, torch.randn(20, 4, 1, n, dtype=torch.float64)

        def train(rows: slice, start: torch.Tensor = start, grads: torch.Tensor = grads) -> torch.Tensor:
            p = nn.Parameter(start[rows].clone())
            opt = make_optimizer([p], "adam", 1e-3)
            for g in grads:
                p.grad = g[rows].clone()
                opt.step()
            return p.detach()
        stack = train(slice(0, 4))
        for r in range(3):
            assert torch.equal(train(slice(r, r + 1)), stack[r:r + 1]), (n, r)


def _params(seed: int = 0) -> list[nn.Parameter]:
    """A critic's worth of stacked weights and biases, sizes that end in vector bodies and scalar tails;
    the narrow last layer's weight stored transposed, as `models.stacked` stores it."""
    gen = torch.Generator().manual_seed(seed)
    shapes = ((3, 2, 17), (3, 1, 17), (3, 17, 5), (3, 1, 5))
    params = [torch.randn(*shape, generator=gen) for shape in shapes]
    params[2] = params[2].mT.contiguous().mT
    return [nn.Parameter(p) for p in params]


def _gradients(params: list[nn.Parameter], step: int) -> list[torch.Tensor]:
    """Gradients for step ``step``; the third in its transposed parameter's layout, as a narrow
    layer's weight gradient is (`models.stacked`), the first transposed against its parameter's."""
    gen = torch.Generator().manual_seed(100 + step)
    grads = [torch.randn(p.shape, generator=gen) * 10.0 ** (i - 2) for i, p in enumerate(params)]
    grads[0], grads[2] = (g.mT.contiguous().mT for g in (grads[0], grads[2]))
    return grads


def test_flat_adam_updates_bit_for_bit_as_torch_adam_and_resumes_exactly():
    ours, theirs = _params(), _params()
    flat = FlatAdam(ours, lr=1e-3, betas=(0.5, 0.999))
    plain = torch.optim.Adam(theirs, lr=1e-3, betas=(0.5, 0.999), foreach=True)
    for t in range(5):
        for opt, params in ((flat, ours), (plain, theirs)):
            for p, g in zip(params, _gradients(params, t)):
                p.grad = g
            opt.step()
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
        assert p.untyped_storage().data_ptr() == flat.flat.untyped_storage().data_ptr()  # a slice of the flat buffer
        assert p.stride() == q.stride()  # in its own layout
    # a copy loaded from the state dicts continues exactly
    again = _params(1)
    with torch.no_grad():
        for p, q in zip(again, ours):
            p.copy_(q)
    resumed = FlatAdam(again, lr=1e-3, betas=(0.5, 0.999))
    resumed.load_state_dict(copy.deepcopy(flat.state_dict()))  # as from a checkpoint file: no shared tensors
    for opt, params in ((flat, ours), (resumed, again)):
        for p, g in zip(params, _gradients(params, 9)):
            p.grad = g
        opt.step()
    for p, q in zip(ours, again):
        assert torch.equal(p, q)


def test_flat_adam_refuses_what_it_cannot_update_as_torch_does():
    params = _params()
    opt = FlatAdam(params, lr=1e-3)
    params[0].grad = torch.zeros_like(params[0])
    with pytest.raises(RuntimeError, match="every one needs a gradient"):
        opt.step()
    with pytest.raises(ValueError, match="none a view"):
        FlatAdam(params, lr=1e-3)  # already slices of the first one's buffer


def test_flat_adam_follows_its_parameters_through_a_module_conversion():
    """``net.double()`` after the optimiser was built (as the float64 reference tests do) gives
    the parameters new storage: the update must still reach them, as torch's Adam's does."""
    ours, theirs = nn.Linear(3, 4), nn.Linear(3, 4)
    theirs.load_state_dict(ours.state_dict())
    flat = FlatAdam(ours.parameters(), lr=1e-2)
    plain = torch.optim.Adam(theirs.parameters(), lr=1e-2, foreach=True)
    ours.double(), theirs.double()
    x = torch.randn(5, 3, dtype=torch.float64)
    for net, opt in ((ours, flat), (theirs, plain)):
        for _ in range(2):
            net(x).pow(2).sum().backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert p.dtype == torch.float64 and torch.equal(p, q)
