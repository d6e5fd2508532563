"""Kernel math against closed forms and plain reference implementations."""
import math

import numpy as np
import pytest
import torch

from objectives import kernels


def expected_kernel(mean_diff: float, var: float, sigma: float, d: int) -> float:
    """E exp(-||v||^2 / (2 sigma^2)) for v ~ N(mean_diff * e_1, var * I_d)."""
    return (sigma**2 / (sigma**2 + var)) ** (d / 2) * math.exp(-mean_diff**2 / (2 * (sigma**2 + var)))


def closed_form_mmd2(mu: float, s1: float, s2: float, sigmas, d: int) -> float:
    """Population MMD^2 between N(0, s1^2 I) and N(mu e_1, s2^2 I) under the sum kernel."""
    return sum(expected_kernel(0, 2 * s1**2, s, d) + expected_kernel(0, 2 * s2**2, s, d)
               - 2 * expected_kernel(mu, s1**2 + s2**2, s, d) for s in sigmas)


@pytest.mark.parametrize("sigmas", [(1.0,), (0.5, 2.0)])
def test_mmd2_matches_gaussian_closed_form(sigmas):
    gen = torch.Generator().manual_seed(0)
    d, n, mu, s1, s2 = 2, 3000, 0.8, 1.0, 1.5
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * s1
    y = torch.randn(n, d, generator=gen, dtype=torch.float64) * s2
    y[:, 0] += mu
    truth = closed_form_mmd2(mu, s1, s2, sigmas, d)
    est = kernels.mmd2(x, y, sigmas, unbiased=True).item()
    assert truth > 0.05
    assert est == pytest.approx(truth, rel=0.1)


def plain_mmd2(x, y, sigma, unbiased):
    """Double loop over pairs, float64 numpy: the definition, nothing clever."""
    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * sigma**2))
    n, m = len(x), len(y)
    if unbiased:
        kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    else:
        kxx = sum(k(a, b) for a in x for b in x) / n**2
        kyy = sum(k(a, b) for a in y for b in y) / m**2
    kxy = sum(k(a, b) for a in x for b in y) / (n * m)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd2_equals_plain_definition(unbiased):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(9, 3))
    got = kernels.mmd2(torch.tensor(x), torch.tensor(y), 1.3, unbiased=unbiased).item()
    assert got == pytest.approx(plain_mmd2(x, y, 1.3, unbiased), rel=1e-10)


def test_density_ratio_matches_analytic_gaussian_ratio():
    """500 + 500 points, N(0,1) denominator, N(0.5,1) numerator: median relative error < 0.2."""
    errors = []
    for seed in range(10):
        gen = torch.Generator().manual_seed(seed)
        x_de = torch.randn(500, 1, generator=gen)
        x_nu = torch.randn(500, 1, generator=gen) + 0.5
        truth = torch.exp(0.5 * x_de**2 - 0.5 * (x_de - 0.5) ** 2).squeeze(1)
        r = kernels.density_ratio(x_de, x_nu, 1.0, eps=1e-3)
        errors.append(((r - truth).abs() / truth).median().item())
    assert np.mean(errors) < 0.2


def test_density_ratio_equals_explicit_linear_solve():
    rng = np.random.default_rng(2)
    x_de, x_nu = rng.normal(size=(30, 2)), rng.normal(0.3, 1.0, size=(20, 2))
    sq = lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1)  # noqa: E731
    k_dede, k_denu = np.exp(-sq(x_de, x_de) / 2), np.exp(-sq(x_de, x_nu) / 2)
    want = (30 / 20) * np.linalg.solve(k_dede + 1e-3 * np.eye(30), k_denu.sum(1))
    got = kernels.density_ratio(torch.tensor(x_de), torch.tensor(x_nu), 1.0, 1e-3).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_density_ratio_is_differentiable():
    gen = torch.Generator().manual_seed(3)
    x_de = torch.randn(6, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    x_nu = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: kernels.density_ratio(a, b, (0.7, 2.0), 1e-2), (x_de, x_nu))


def test_stacked_runs_equal_separate_calls():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(3, 40, 5, generator=gen), torch.randn(3, 30, 5, generator=gen)
    stacked_mmd = kernels.mmd2(x, y, (1.0, 2.0))
    stacked_ratio = kernels.density_ratio(x, y, 1.0)
    for r in range(3):
        torch.testing.assert_close(stacked_mmd[r], kernels.mmd2(x[r], y[r], (1.0, 2.0)))
        torch.testing.assert_close(stacked_ratio[r], kernels.density_ratio(x[r], y[r], 1.0), rtol=1e-4, atol=1e-4)


def plain_gram(x, y, sigmas):
    """The sum kernel through plain autograd ops (torch.cdist), for gradient comparisons."""
    d2 = torch.cdist(x, y).pow(2)
    return sum(torch.exp(-d2 / (2 * s**2)) for s in sigmas)


# How the Gram's output is used decides the gradient it receives, and the backward has a
# path per kind: dense, a row/column sum (stride 0 in one dim), a per-run scalar (block sum).
READOUTS = {
    "dense": lambda k, w: (k * w).sum(),
    "row sums": lambda k, w: (k.sum(-1) * w[..., 0]).sum(),
    "block means": lambda k, w: (kernels.block_mean(k) * w[:, 0, 0]).sum(),
}


@pytest.mark.parametrize("readout", sorted(READOUTS))
@pytest.mark.parametrize("sigmas", [(1.0,), (0.7,), (0.5, 1.0, 4.0)])
def test_gram_backward_matches_plain_autograd(sigmas, readout):
    gen = torch.Generator().manual_seed(5)
    use = READOUTS[readout]
    x = torch.randn(2, 15, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 11, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 15, 11, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad(use(kernels.gaussian_gram(x, y, sigmas), weights), (x, y))
    plain = torch.autograd.grad(use(plain_gram(x, y, sigmas), weights), (x, y))
    for a, b in zip(ours, plain):
        torch.testing.assert_close(a, b)
    # the same tensor on both sides (a Gram of x with itself) accumulates both gradients
    wx = torch.randn(2, 15, 15, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad(use(kernels.gaussian_gram(x, x, sigmas), wx), x)[0]
    plain = torch.autograd.grad(use(plain_gram(x, x, sigmas), wx), x)[0]
    torch.testing.assert_close(ours, plain)


def plain_biased_mmd2(x, y, sigmas):
    """The biased squared MMD through plain autograd ops, for gradient comparisons."""
    return (plain_gram(x, x, sigmas).mean((-1, -2)) + plain_gram(y, y, sigmas).mean((-1, -2))
            - 2 * plain_gram(x, y, sigmas).mean((-1, -2)))


@pytest.mark.parametrize("sigmas", [(1.0,), (0.7,), (0.5, 1.0, 4.0)])
@pytest.mark.parametrize("grad_of", ["both", "x", "y"])
def test_mmd2_value_and_gradients_match_plain_autograd(sigmas, grad_of):
    """The fused biased MMD (`kernels.BiasedMMD2`): its value, and its gradients for a per-run
    upstream gradient, with either point set fixed (MMD-net's data, a generator step's real codes)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 15, 4, generator=gen, dtype=torch.float64, requires_grad=grad_of in ("both", "x"))
    y = torch.randn(3, 11, 4, generator=gen, dtype=torch.float64, requires_grad=grad_of in ("both", "y")) + 0.3
    upstream = torch.randn(3, generator=gen, dtype=torch.float64)
    inputs = [t for t in (x, y) if t.requires_grad]
    ours, plain = kernels.mmd2(x, y, sigmas), plain_biased_mmd2(x, y, sigmas)
    torch.testing.assert_close(ours, plain, rtol=1e-12, atol=1e-14)
    for a, b in zip(torch.autograd.grad((ours * upstream).sum(), inputs),
                    torch.autograd.grad((plain * upstream).sum(), inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_spd_solve_gradients_match_plain_solve():
    gen = torch.Generator().manual_seed(6)
    m = torch.randn(3, 6, 6, generator=gen, dtype=torch.float64)
    a = (m @ m.transpose(-1, -2) + 6 * torch.eye(6, dtype=torch.float64)).requires_grad_()
    b = torch.randn(3, 6, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 6, 1, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((kernels.spd_solve(a, b) * w).sum(), (a, b))
    plain = torch.autograd.grad((torch.linalg.solve(a, b) * w).sum(), (a, b))
    for x, y in zip(ours, plain):
        torch.testing.assert_close(x, y)


def plain_ratio_per_bandwidth(x_de, x_nu, sigmas, eps):
    """The authors' estimator written out: per bandwidth, its own Gram matrices and an LU
    solve; the ratios averaged."""
    eye = torch.eye(x_de.shape[-2], dtype=x_de.dtype)
    ratios = [x_de.shape[-2] / x_nu.shape[-2]
              * torch.linalg.solve(plain_gram(x_de, x_de, (s,)) + eps * eye, plain_gram(x_de, x_nu, (s,)).sum(-1))
              for s in sigmas]
    return sum(ratios) / len(ratios)


@pytest.mark.parametrize("sigmas", [(1.0,), (0.5, 1.0, 4.0)])
def test_density_ratio_is_the_mean_of_per_bandwidth_ratios(sigmas):
    """Several bandwidths: one ratio per bandwidth, averaged (JuliaGRAM src/kmm.jl,
    GRAMFlow), not one solve with the summed kernel; values and gradients."""
    gen = torch.Generator().manual_seed(7)
    x_de = torch.randn(2, 20, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    x_nu = (torch.randn(2, 25, 3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    w = torch.randn(2, 20, generator=gen, dtype=torch.float64)
    ours = kernels.density_ratio(x_de, x_nu, sigmas, 1e-3)
    plain = plain_ratio_per_bandwidth(x_de, x_nu, sigmas, 1e-3)
    torch.testing.assert_close(ours, plain, rtol=1e-8, atol=1e-10)
    for a, b in zip(torch.autograd.grad((ours * w).sum(), (x_de, x_nu)),
                    torch.autograd.grad((plain * w).sum(), (x_de, x_nu))):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    if len(sigmas) > 1:  # and it is not the summed-kernel estimate
        summed = kernels.ratio_from_blocks(plain_gram(x_de, x_de, sigmas), plain_gram(x_de, x_nu, sigmas))
        assert (summed - plain).abs().max() > 0.1


@pytest.mark.parametrize("sigmas", [(1.0,), (0.5, 1.0, 4.0)])
@pytest.mark.parametrize("readout", ["ratio", "mmd", "both"])
def test_ratio_and_mmd2_share_blocks_and_match_plain(sigmas, readout):
    """Values and the closed-form gradients for both point sets (GRAM-net's projector gets both),
    for each readout alone (its two players' losses) and together; K_nunu carries no gradient."""
    gen = torch.Generator().manual_seed(8)
    x_de = torch.randn(2, 20, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    x_nu = (torch.randn(2, 17, 3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    ratio, d2 = kernels.ratio_and_mmd2(x_de, x_nu, sigmas, 1e-3)
    plain_ratio = plain_ratio_per_bandwidth(x_de, x_nu, sigmas, 1e-3)
    torch.testing.assert_close(ratio, plain_ratio, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(d2, kernels.mmd2(x_de, x_nu, sigmas))
    nu = x_nu.detach()
    plain_d2 = (plain_gram(x_de, x_de, sigmas).mean((-1, -2)) + plain_gram(nu, nu, sigmas).mean((-1, -2))
                - 2 * plain_gram(x_de, x_nu, sigmas).mean((-1, -2)))
    weights = torch.rand(2, 20, generator=gen, dtype=torch.float64)
    losses = {"ratio": ((ratio * weights).sum(), (plain_ratio * weights).sum()),
              "mmd": ((d2 * torch.tensor([1.0, 3.0])).sum(), (plain_d2 * torch.tensor([1.0, 3.0])).sum())}
    losses["both"] = (losses["ratio"][0] + losses["mmd"][0], losses["ratio"][1] + losses["mmd"][1])
    ours, plain = losses[readout]
    for a, b in zip(torch.autograd.grad(ours, (x_de, x_nu)), torch.autograd.grad(plain, (x_de, x_nu))):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_per_bandwidth_grams_backward_matches_plain_autograd():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(2, 15, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 11, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 15, 11, generator=gen, dtype=torch.float64)
    sigmas = (0.5, 1.0, 4.0)
    ours = kernels.gaussian_grams(x, y, sigmas)
    plain = torch.stack([plain_gram(x, y, (s,)) for s in sigmas])
    torch.testing.assert_close(ours, plain)
    for a, b in zip(torch.autograd.grad((ours * w).sum(), (x, y)), torch.autograd.grad((plain * w).sum(), (x, y))):
        torch.testing.assert_close(a, b)
