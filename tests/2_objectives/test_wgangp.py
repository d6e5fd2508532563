"""WGAN-GP specifics the generic contract cannot see: the penalty's value and gradient, and
the paper's settings. (Steps, resuming, seeds and stacking are in tests/2_objectives/test_contract.py.)"""
import torch

from objectives.wgangp import WGANGP


def test_penalty_is_per_run_and_differentiable_in_the_critic():
    """Linear critics D_r(x) = w_r . x have input gradient w_r everywhere, so run r's
    penalty is (|w_r| - 1)^2 and its gradient in w_r is 2 (|w_r| - 1) w_r / |w_r|."""
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8]], requires_grad=True)  # |w| = 5 and 1
    x_hat = torch.randn(2, 7, 2, requires_grad=True)
    out = (x_hat * w[:, None]).sum(-1, keepdim=True)  # (R, B, 1), like a stacked critic
    gp = WGANGP.penalty(x_hat, out)
    torch.testing.assert_close(gp, torch.tensor([16.0, 0.0]))
    gp.sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor([[4.8, 6.4], [0.0, 0.0]]))


def test_defaults_follow_the_paper():
    for kind in ("toy", "image"):
        hp = WGANGP.defaults[kind]
        assert (hp["lambda_gp"], hp["n_critic"], hp["lr"], hp["beta1"], hp["beta2"]) == (10.0, 5, 1e-4, 0.5, 0.9)
