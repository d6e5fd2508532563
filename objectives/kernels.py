"""Shared kernel math: Gaussian Gram matrices, squared MMD and the kernel density-ratio estimate.

Every function accepts leading batch dimensions, so R independent runs stacked on dim 0
(shape ``(R, n, d)``) are handled in one call. Bandwidths are STANDARD DEVIATIONS
``s``: ``k(a, b) = exp(-||a - b||^2 / (2 s^2))``. Sources that write
``exp(-||a - b||^2 / (2 s))`` (GRAMFlow, the GMMN code) list squared bandwidths: their
defaults are converted where they are declared (see docs/defaults.md). With a list of
bandwidths, the MMD uses the *sum* of the Gaussian kernels (all the authors' codes), while
the density ratio is estimated once per bandwidth, each from its own Gram matrices and
solve, and the ratios are averaged (the authors' Julia and TensorFlow GRAM-net code):
`density_ratio`, `ratio_and_mmd2`.

Speed without changing the math: a Gram matrix is one matrix product plus one ``exp2`` per
bandwidth (the product yields ``log2 k``; torch's CPU ``exp2`` is about three times faster
than its ``exp``), whose augmented operands each point set builds once per call
(`_Points`), and its backward is written out in closed form (`GaussianGram`) instead of
being traced through a dozen elementwise ops; the biased MMD is one function whose backward
needs four products where the three Gram blocks' backwards take six (`mmd2`); linear solves
go through a Cholesky factor whose backward is one more triangular solve (`spd_solve`).
The density ratio and the MMD on the same points (GRAM-net) share their Gram blocks, and
their backward is one closed form over all blocks and the solve (`RatioAndMMD2`), with no
n x n gradient formed. ``tests/2_objectives/test_kernels.py``
holds all of this to plain autograd and to closed forms.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

Sigmas = float | Sequence[float]

# exp() of arguments below about -87 underflows float32 into denormals, which take a slow
# path on CPUs (we measured a 9x slower exp late in training). Kernel values below
# exp(-80) ~ 2e-35 are indistinguishable from 0 next to the diagonal's 1, so clamp there.
MIN_LOG_KERNEL = -80.0
LOG2_E = 1.4426950408889634  # log2(e): exp(a) = exp2(a * LOG2_E)


def _full_precision(fn):
    """Run an autograd function's ``forward``/``backward`` with autocast off: the kernel
    math (expanded squared distances, exp, the Cholesky solve) is float32 or wider even
    when the networks run under bfloat16 autocast (`RunConfig.layer_dtype`)."""
    @functools.wraps(fn)
    def wrapped(ctx, *args):
        if not (torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")):
            return fn(ctx, *args)  # float32 layers (the default): nothing to turn off, no contexts to enter
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return fn(ctx, *args)
    return wrapped


def _float(x: Tensor) -> Tensor:
    """``x`` widened to float32 if autocast made it narrower (a network's bfloat16 output)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _as_tuple(sigmas: Sigmas) -> tuple[float, ...]:
    return (float(sigmas),) if isinstance(sigmas, (int, float)) else tuple(float(s) for s in sigmas)


def _compact(grad: Tensor) -> Tensor:
    """Undo broadcasting in an incoming gradient: a dim of stride 0 (from the backward of
    ``sum``, see `block_mean`) becomes size 1, so the following multiply broadcasts instead of
    walking an expanded tensor element by element (several times faster)."""
    for dim in (-1, -2):
        if grad.stride(dim) == 0 and grad.shape[dim] > 1:
            grad = grad.narrow(dim, 0, 1)
    return grad


class _Points:
    """A point set's two sides of the one-product ``log2 k`` (`_log2_kernel`), each built once
    however many Gram blocks and bandwidths use it: ``[x, |x|^2, 1]`` as a block's rows and
    ``[2c x, -c, -c |x|^2]`` (``c = log2(e) / (2 s^2)``) as its columns."""

    def __init__(self, x: Tensor):
        self.x, self.sq = x, x.pow(2).sum(-1, keepdim=True)
        self._rows: Tensor | None = None
        self._cols: dict[float, Tensor] = {}

    @staticmethod
    def pair(x: Tensor, y: Tensor) -> tuple[_Points, _Points]:
        """The points of ``x`` and of ``y`` (one object when they are the same tensor)."""
        p = _Points(x)
        return p, (p if y is x else _Points(y))

    def rows(self) -> Tensor:
        if self._rows is None:
            self._rows = torch.cat([self.x, self.sq, torch.ones_like(self.sq)], -1)
        return self._rows

    def cols(self, sigma: float) -> Tensor:
        if sigma not in self._cols:
            c = 0.5 * LOG2_E / sigma**2
            self._cols[sigma] = torch.cat([self.x * (2 * c), torch.full_like(self.sq, -c), self.sq * -c], -1)
        return self._cols[sigma]


def _log2_kernel(p: _Points, q: _Points, sigma: float) -> Tensor:
    """``log2 k = -||x_i - y_j||^2 log2(e) / (2 sigma^2)`` clamped to [MIN_LOG_KERNEL log2(e), 0],
    from ONE product of augmented points: ``[x, |x|^2, 1] . [y 2c, -c, -|y|^2 c]`` with
    ``c = log2(e) / (2 s^2)`` (`_Points`). This replaces separate add/scale/clamp passes over the
    n x m matrix; the kernel is its ``exp2``."""
    return (p.rows() @ q.cols(sigma).transpose(-1, -2)).clamp_(MIN_LOG_KERNEL * LOG2_E, 0.0)


def _kernel(p: _Points, q: _Points, sigma: float) -> Tensor:
    """The Gram matrix ``exp(-||x_i - y_j||^2 / (2 sigma^2))`` of one bandwidth (as an ``exp2``)."""
    return _log2_kernel(p, q, sigma).exp2_()


def _pull(w: Tensor, a: Tensor, b: Tensor, transposed: bool = False) -> Tensor:
    """``W b - rowsum(W) a``, or with ``transposed`` ``W^T b - colsum(W) a``: a Gram block's
    pull on its points. The product is computed as ``(b^T W^T)^T``: its output is then d x n
    instead of n x d (d, the points' dimension, is small), which a batched product computes
    several times faster for the same sums."""
    if transposed:
        return (b.mT @ w).mT - w.sum(-2).unsqueeze(-1) * a
    return (b.mT @ w.mT).mT - w.sum(-1, keepdim=True) * a


def _gram_input_grads(ctx, w: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """``(W y - rowsum(W) x, W^T x - colsum(W) y)``, each only where ``ctx`` needs it."""
    gx = _pull(w, x, y) if ctx.needs_input_grad[0] else None
    gy = _pull(w, y, x, transposed=True) if ctx.needs_input_grad[1] else None
    return gx, gy


class GaussianGram(torch.autograd.Function):
    """``K = sum_s exp(-D / (2 s^2))`` with ``D`` the squared distances, and its closed-form
    backward: with ``W = sum_s G * K_s / s^2`` (G the incoming gradient),
    ``dL/dx = W y - rowsum(W) x`` and ``dL/dy = W^T x - colsum(W) y``."""

    @staticmethod
    @_full_precision
    def forward(ctx, x: Tensor, y: Tensor, sigmas: tuple[float, ...]) -> Tensor:
        p, q = _Points.pair(x, y)
        gram = _kernel(p, q, sigmas[0])
        for s in sigmas[1:]:
            gram += _kernel(p, q, s)
        # One bandwidth: keep K for backward. Several: keep only the inputs and recompute
        # each K_s in backward, so memory stays at one n x m matrix whatever the bandwidths.
        ctx.save_for_backward(x, y, *([gram] if len(sigmas) == 1 else []))
        ctx.sigmas = sigmas
        return gram

    @staticmethod
    @_full_precision
    def backward(ctx, grad: Tensor):
        x, y, *saved = ctx.saved_tensors
        grad = _compact(grad)
        # A per-run scalar G (the backward of a block sum, e.g. an MMD term) multiplies the
        # small n x d results instead of the n x m matrix; with one bandwidth W is then K
        # itself and the backward makes no n x m pass at all.
        scale = None
        if grad.shape[-2:] == (1, 1):
            grad, scale = torch.ones_like(grad), grad
        if saved and scale is not None:
            w, scale = saved[0], scale / ctx.sigmas[0] ** 2
        else:
            w, (p, q) = None, _Points.pair(x, y)
            for s in ctx.sigmas:
                k = saved[0] if saved else _kernel(p, q, s)
                term = k * (grad * (1.0 / s**2))
                w = term if w is None else w.add_(term)
        gx, gy = _gram_input_grads(ctx, w, x, y)
        if scale is not None:
            gx, gy = (None if g is None else g.mul_(scale) for g in (gx, gy))
        return gx, gy, None


def gaussian_gram(x: Tensor, y: Tensor, sigmas: Sigmas) -> Tensor:
    """Gram matrix ``K[i, j] = sum_s exp(-||x_i - y_j||^2 / (2 s^2))`` of shape ``(..., n, m)``."""
    return GaussianGram.apply(_float(x), _float(y), _as_tuple(sigmas))


class GaussianGrams(torch.autograd.Function):
    """One Gram matrix per bandwidth, stacked first: ``K[s] = exp(-D / (2 s^2))``, shape
    ``(S, ..., n, m)``; backward as `GaussianGram` with ``W = sum_s G[s] * K[s] / s^2``."""

    @staticmethod
    @_full_precision
    def forward(ctx, x: Tensor, y: Tensor, sigmas: tuple[float, ...]) -> Tensor:
        p, q = _Points.pair(x, y)
        grams = torch.stack([_kernel(p, q, s) for s in sigmas])
        ctx.save_for_backward(x, y, grams)
        ctx.sigmas = sigmas
        return grams

    @staticmethod
    @_full_precision
    def backward(ctx, grad: Tensor):
        x, y, grams = ctx.saved_tensors
        w = grad * grams
        for term, s in zip(w, ctx.sigmas):  # Python scalars: no tensor made from host data (a copy per step on a GPU)
            term.mul_(1.0 / s**2)
        return (*_gram_input_grads(ctx, w.sum(0), x, y), None)


def gaussian_grams(x: Tensor, y: Tensor, sigmas: Sigmas) -> Tensor:
    """One Gram matrix per bandwidth, ``(S, ..., n, m)``: ``K[s, ..., i, j] = exp(-||x_i - y_j||^2 / (2 s^2))``."""
    return GaussianGrams.apply(_float(x), _float(y), _as_tuple(sigmas))


def _kernel_and_weight(p: _Points, q: _Points, sigmas: tuple[float, ...], weight: bool) -> tuple[Tensor, Tensor | None]:
    """The sum-kernel Gram matrix ``K = sum_s K_s`` and, with ``weight``, the matrix its
    derivative needs, ``W = sum_s K_s / s^2`` (`GaussianGram`); with one bandwidth ``W`` is
    ``K`` itself and the caller scales by ``1 / s^2`` (`_weight_scale`)."""
    if len(sigmas) == 1:
        k = _kernel(p, q, sigmas[0])
        return k, k if weight else None
    k = w = None
    for s in sigmas:
        k_s = _kernel(p, q, s)
        if weight:
            w = k_s * (1.0 / s**2) if w is None else w.add_(k_s, alpha=1.0 / s**2)
        k = k_s if k is None else k.add_(k_s)
    return k, w


def _weight_scale(sigmas: tuple[float, ...]) -> float:
    """What `_kernel_and_weight`'s ``W`` still needs multiplying by: ``1 / s^2`` for one bandwidth."""
    return 1.0 / sigmas[0] ** 2 if len(sigmas) == 1 else 1.0


class BiasedMMD2(torch.autograd.Function):
    """The biased squared MMD under the sum kernel, ``mean K_xx + mean K_yy - 2 mean K_xy``,
    and its closed-form gradient (``W`` as in `GaussianGram`, per-run upstream gradient g):

        dL/dx = g (2/n^2 (W_xx x - rowsum(W_xx) x) - 2/(nm) (W_xy y - rowsum(W_xy) x))
        dL/dy = g (2/m^2 (W_yy y - rowsum(W_yy) y) - 2/(nm) (W_xy^T x - colsum(W_xy) y))

    Four products where the three blocks' own backwards take six: ``K_xx`` is symmetric, so
    its two arguments' gradients are one term counted twice (equal up to rounding). Only the
    blocks a needed gradient reads are kept; a point set without gradient (MMD-net's data)
    costs its block's forward alone."""

    @staticmethod
    @_full_precision
    def forward(ctx, x: Tensor, y: Tensor, sigmas: tuple[float, ...]) -> Tensor:
        gx, gy = ctx.needs_input_grad[:2]
        px, py = _Points(x), _Points(y)
        k_xx, w_xx = _kernel_and_weight(px, px, sigmas, gx)
        k_yy, w_yy = _kernel_and_weight(py, py, sigmas, gy)
        k_xy, w_xy = _kernel_and_weight(px, py, sigmas, gx or gy)
        ctx.save_for_backward(x, y, w_xx, w_yy, w_xy)
        ctx.scale = _weight_scale(sigmas)
        return block_mean(k_xx) + block_mean(k_yy) - 2.0 * block_mean(k_xy)

    @staticmethod
    @_full_precision
    def backward(ctx, grad: Tensor):
        x, y, w_xx, w_yy, w_xy = ctx.saved_tensors
        n, m = x.shape[-2], y.shape[-2]
        g = (grad * ctx.scale).unsqueeze(-1).unsqueeze(-1)
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = (_pull(w_xx, x, x) * (2.0 / n**2) - _pull(w_xy, x, y) * (2.0 / (n * m))) * g
        if ctx.needs_input_grad[1]:
            gy = (_pull(w_yy, y, y) * (2.0 / m**2) - _pull(w_xy, y, x, transposed=True) * (2.0 / (n * m))) * g
        return gx, gy, None


def _cholesky_solve(b: Tensor, chol: Tensor) -> Tensor:
    """``(L L^T)^-1 b`` from the lower factor ``L``. On CUDA as two triangular solves: a batched
    ``cholesky_solve`` goes through MAGMA there, which allocates while a CUDA graph is being
    captured and breaks the capture (`engine.graphs`); on the CPU LAPACK's solve, as before."""
    if chol.is_cuda:
        y = torch.linalg.solve_triangular(chol, b, upper=False)
        return torch.linalg.solve_triangular(chol.transpose(-1, -2), y, upper=True)
    return torch.cholesky_solve(b, chol)


class _SPDSolve(torch.autograd.Function):
    """``A^-1 b`` for symmetric positive definite ``A`` via Cholesky; backward
    ``v = A^-1 g``, ``dA = -v x^T``, ``db = v`` (one more solve with the same factor)."""

    @staticmethod
    @_full_precision
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        chol, _ = torch.linalg.cholesky_ex(a)  # never raises: a failed factor gives NaN for that run only
        x = _cholesky_solve(b, chol)
        ctx.save_for_backward(chol, x)
        return x

    @staticmethod
    @_full_precision
    def backward(ctx, grad: Tensor):
        chol, x = ctx.saved_tensors
        v = _cholesky_solve(grad, chol)
        ga = -v @ x.transpose(-1, -2) if ctx.needs_input_grad[0] else None
        return ga, v


def spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a x = b`` for symmetric positive definite ``a (..., n, n)``, ``b (..., n, k)``."""
    return _SPDSolve.apply(_float(a), _float(b))


def block_mean(k: Tensor) -> Tensor:
    """Mean over the last two dims as ``sum / count``: the backward of ``sum`` hands
    `GaussianGram` a stride-0 gradient that `_compact` shrinks to one number per run,
    where ``mean``'s backward materialises a dense n x m gradient (three extra passes)."""
    return k.sum((-1, -2)) / (k.shape[-1] * k.shape[-2])


def mmd2_from_blocks(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> Tensor:
    """Biased squared MMD from the three Gram blocks (``kyy`` may be computed without grad)."""
    return block_mean(kxx) + block_mean(kyy) - 2.0 * block_mean(kxy)


def mmd2(x: Tensor, y: Tensor, sigmas: Sigmas, unbiased: bool = False) -> Tensor:
    """Squared MMD between samples ``x (..., n, d)`` and ``y (..., m, d)`` under the sum kernel.

    The biased (V-statistic) estimate is non-negative; the unbiased (U-statistic) one
    drops the diagonal terms and can be slightly negative when the two sets agree.
    """
    if not unbiased:
        return BiasedMMD2.apply(_float(x), _float(y), _as_tuple(sigmas))
    kxx, kyy, kxy = gaussian_gram(x, x, sigmas), gaussian_gram(y, y, sigmas), gaussian_gram(x, y, sigmas)
    n, m = x.shape[-2], y.shape[-2]
    tr_x = torch.diagonal(kxx, dim1=-2, dim2=-1).sum(-1)
    tr_y = torch.diagonal(kyy, dim1=-2, dim2=-1).sum(-1)
    return ((kxx.sum((-1, -2)) - tr_x) / (n * (n - 1)) + (kyy.sum((-1, -2)) - tr_y) / (m * (m - 1))
            - 2.0 * block_mean(kxy))


def smooth_mmd(d2: Tensor, floor: float = 1e-6) -> Tensor:
    """``sqrt(max(MMD^2, 0) + floor)``: the MMD the authors' code minimises (finite gradient at 0)."""
    return d2.clamp_min(0.0).add(floor).sqrt()


def ratio_from_blocks(k_dede: Tensor, k_denu: Tensor, eps: float = 1e-3) -> Tensor:
    """Density ratio at the ``x_de`` points from ``K_dede (n_de, n_de)`` and ``K_denu (n_de, n_nu)``."""
    n_de, n_nu = k_denu.shape[-2], k_denu.shape[-1]
    eye = torch.eye(n_de, dtype=k_dede.dtype, device=k_dede.device)
    b = k_denu.sum(-1, keepdim=True)
    return spd_solve(k_dede + eps * eye, b).squeeze(-1) * (n_de / n_nu)


def _stacked(blocks: list[Tensor]) -> Tensor:
    """Per-bandwidth blocks stacked first, ``(S, ..., n, m)`` (one bandwidth: a view, no copy)."""
    return blocks[0].unsqueeze(0) if len(blocks) == 1 else torch.stack(blocks)


class RatioAndMMD2(torch.autograd.Function):
    """`ratio_and_mmd2` with its backward in closed form, through every Gram block at once.

    Per bandwidth s (S of them, c = n_de / n_nu, A_s = K_dede,s + eps I, r_s = A_s^-1 K_denu,s 1):
    ratio = (c / S) sum_s r_s and MMD^2 = sum_s (mean K_dede,s + mean K_nunu,s - 2 mean K_denu,s).
    With g the ratio's incoming gradient, gamma the MMD's and u_s = (c / S) A_s^-1 g:

        dL/dK_dede,s = -u_s r_s^T + gamma / n^2,   dL/dK_denu,s = u_s 1^T - 2 gamma / (n m),

    so each block's weight ``W = dL/dK * K / s^2`` (`GaussianGram`) is ``diag(a) K diag(b) + kappa K``
    and its pulls on the points are products of K with a few n x d columns: no n x n
    gradient, outer product or weighted copy of a block is formed, where autograd through
    `spd_solve` and `GaussianGram` makes several n x n passes per block. ``K_nunu`` gets no
    gradient (as in `ratio_and_mmd2`)."""

    @staticmethod
    @_full_precision
    def forward(ctx, x_de: Tensor, x_nu: Tensor, sigmas: tuple[float, ...], eps: float):
        ctx.set_materialize_grads(False)
        n_de, n_nu = x_de.shape[-2], x_nu.shape[-2]
        de, nu = _Points(x_de), _Points(x_nu)
        k_dede = _stacked([_kernel(de, de, s) for s in sigmas])
        k_denu = _stacked([_kernel(de, nu, s) for s in sigmas])
        k_nunu = _stacked([_kernel(nu, nu, s) for s in sigmas])
        eye = torch.eye(n_de, dtype=k_dede.dtype, device=k_dede.device)
        chol, _ = torch.linalg.cholesky_ex(k_dede + eps * eye)  # never raises: NaN for a failed run only
        solved = _cholesky_solve(k_denu.sum(-1, keepdim=True), chol)  # (S, ..., n_de, 1): r_s
        ratio = (solved.squeeze(-1) * (n_de / n_nu)).mean(0)
        d2 = mmd2_from_blocks(k_dede, k_nunu, k_denu).sum(0)
        ctx.save_for_backward(x_de, x_nu, k_dede, k_denu, chol, solved)
        ctx.sigmas = sigmas
        return ratio, d2

    @staticmethod
    @_full_precision
    def backward(ctx, g_ratio: Tensor | None, g_d2: Tensor | None):
        x_de, x_nu, k_dede, k_denu, chol, solved = ctx.saved_tensors
        n_de, n_nu, n_s = x_de.shape[-2], x_nu.shape[-2], len(ctx.sigmas)
        u = None if g_ratio is None else _cholesky_solve(
            (g_ratio * (n_de / n_nu / n_s)).unsqueeze(-1).expand_as(solved), chol)  # (S, ..., n_de, 1)
        gamma = None if g_d2 is None else g_d2.unsqueeze(-1).unsqueeze(-1)  # (..., 1, 1)
        g_de = g_nu = None
        for i, s in enumerate(ctx.sigmas):
            q = 1.0 / s**2
            # K_denu's weight diag(a) K_denu, a = q u - 2 q gamma / (n m)
            a = torch.zeros_like(x_de[..., :1]) if u is None else u[i] * q
            if gamma is not None:
                a = a - gamma * (2.0 * q / (n_de * n_nu))
            if ctx.needs_input_grad[0]:
                g = a * _pull(k_denu[i], x_de, x_nu)
                if u is not None:  # K_dede's weight diag(-q u) K diag(r)
                    g = g + _symmetric_pull(k_dede[i], x_de, u[i] * -q, solved[i])
                if gamma is not None:  # and q gamma / n^2 K
                    g = g + _symmetric_pull(k_dede[i], x_de) * (gamma * (q / n_de**2))
                g_de = g if g_de is None else g_de + g
            if ctx.needs_input_grad[1]:
                pull = (torch.cat([a * x_de, a], -1).mT @ k_denu[i]).mT  # K_denu^T [a x_de, a]
                g = pull[..., :-1] - pull[..., -1:] * x_nu
                g_nu = g if g_nu is None else g_nu + g
        return g_de, g_nu, None, None


def _symmetric_pull(k: Tensor, x: Tensor, a: Tensor | None = None, b: Tensor | None = None) -> Tensor:
    """The pull on ``x`` of a symmetric block ``K = k(x, x)`` weighted by ``W = diag(a) K diag(b)``
    (``W = K`` without ``a``, ``b``), through both of its arguments:
    ``(W + W^T) x - (rowsum(W) + colsum(W)) x``, from one product with K (see `_pull`)."""
    if a is None:
        pull = (torch.cat([x, torch.ones_like(x[..., :1])], -1).mT @ k).mT  # K [x, 1]
        return 2.0 * (pull[..., :-1] - pull[..., -1:] * x)
    d = x.shape[-1]
    pull = (torch.cat([b * x, a * x, b, a], -1).mT @ k).mT  # K [b x, a x, b, a]
    return a * pull[..., :d] + b * pull[..., d:2 * d] - (a * pull[..., -2:-1] + b * pull[..., -1:]) * x


def ratio_and_mmd2(x_de: Tensor, x_nu: Tensor, sigmas: Sigmas, eps: float = 1e-3) -> tuple[Tensor, Tensor]:
    """The density ratio ``p_nu / p_de`` at the points ``x_de`` (`density_ratio`) and the
    biased squared MMD between the two sets under the sum kernel, from one set of Gram
    blocks; no gradient flows through the ``x_nu`` - ``x_nu`` block (neither quantity's
    gradient with respect to ``x_de`` needs it, and GRAM-net's data block is fixed).

    One Gram matrix per block and one solve per bandwidth; the ratio is the mean of the
    per-bandwidth ratios (the authors' estimator), the MMD^2 the sum of the per-bandwidth
    MMD^2 (the sum kernel). The backward is in closed form (`RatioAndMMD2`).
    """
    return RatioAndMMD2.apply(_float(x_de), _float(x_nu), _as_tuple(sigmas), float(eps))


def density_ratio(x_de: Tensor, x_nu: Tensor, sigmas: Sigmas, eps: float = 1e-3) -> Tensor:
    """Kernel-mean-matching estimate of ``p_nu / p_de`` at the points ``x_de``.

    ``r = (n_de / n_nu) (K_dede + eps I)^-1 K_denu 1`` (Sugiyama et al. 2012, fixed design),
    solved through a Cholesky factor, never an explicit inverse; with several bandwidths,
    the mean over bandwidths of the estimate with each one's own kernel (the authors'
    estimator; not one solve with the summed kernel). Differentiable in both point sets.
    The factorisation never raises, so one ill-conditioned run in a stack yields non-finite
    values for that run only (caught by the divergence check) instead of aborting the
    others. Returns shape ``(..., n_de)``.
    """
    sigmas = _as_tuple(sigmas)
    if len(sigmas) == 1:
        return ratio_from_blocks(gaussian_gram(x_de, x_de, sigmas), gaussian_gram(x_de, x_nu, sigmas), eps)
    return ratio_from_blocks(gaussian_grams(x_de, x_de, sigmas), gaussian_grams(x_de, x_nu, sigmas), eps).mean(0)
