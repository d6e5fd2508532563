"""Optimiser plumbing: gradients stored by `set_grads` are applied to the right elements, and
a run's Adam update does not depend on where its slice sits in a stacked tensor."""

import torch
from torch import nn

from objectives.base import fused_devices, make_optimizer, set_grads


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
    assert not opt.defaults["fused"]


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
