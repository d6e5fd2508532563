"""Adam over one flat tensor: the same arithmetic as torch's Adam in a handful of ops.

torch's CPU Adam (the ``foreach`` path; the fused kernel rounds by position there, see
`objectives.base.POSITION_DEPENDENT_FUSED`) loops over the parameters, about eight ops per
tensor: a stacked critic's twelve weight and bias tensors cost about a hundred small ops
per optimiser step, which on the ring's tiny networks was a tenth of a step. `FlatAdam`
points every parameter at a slice of one flat buffer (the parameters stay the same
objects, so networks, ``state_dict`` and in-place loads work as before), gathers the
gradients into one flat tensor and applies Adam's update to that, op for op as torch's
``foreach`` Adam does. Elementwise CPU ops round the same wherever an element sits, so the
update is bit for bit torch's (`tests/2_objectives/test_optim.py`). A parameter may be
stored in any dense layout (a narrow layer's weight is a transposed view, `models.stacked`):
its slice holds its elements in memory order, and a gradient laid out differently from its
parameter is copied into the parameter's layout before it is gathered.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def flattenable(params: list[nn.Parameter]) -> bool:
    """Whether ``params`` can share one flat buffer: dense, on one device and dtype, and
    each the whole of its own storage (not already a view into another buffer)."""
    return bool(params) and len({(p.device, p.dtype) for p in params}) == 1 and all(
        p.layout == torch.strided and p.storage_offset() == 0 and p.untyped_storage().nbytes() == p.nbytes
        and _dense(p) for p in params)


def _dense(t: Tensor) -> bool:
    """Whether ``t`` fills its memory without gaps or overlaps, in some order of its dims."""
    return t.permute(sorted(range(t.dim()), key=lambda d: -t.stride(d))).is_contiguous()


def _in_memory_order(t: Tensor, like: Tensor) -> Tensor:
    """``t``'s elements as a flat tensor in the memory order of ``like`` (a dense tensor of
    the same shape): a view when ``t`` has ``like``'s strides, else a copy in that layout."""
    if t.stride() != like.stride():
        t = torch.empty_like(like).copy_(t)
    return t.as_strided((t.numel(),), (1,))


class FlatAdam(torch.optim.Optimizer):
    """Adam (``lr``, ``betas``, ``eps``; no weight decay, no amsgrad) whose parameters
    are slices of one flat tensor; state is one flat ``exp_avg``/``exp_avg_sq`` pair and
    one step count, held as the first parameter's state (so the optimiser's
    ``state_dict`` round-trips as torch's does)."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        params = list(params)
        if not flattenable(params):
            raise ValueError("FlatAdam needs dense contiguous parameters of one device and dtype, none a view")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self.params = params
        self._flatten()

    @torch.no_grad()
    def _flatten(self) -> None:
        """Point every parameter at its slice of one new flat buffer holding their values,
        and bring the state to the buffer's dtype and device: at the start, and again after
        a module conversion (``net.double()``, ``net.to(device)``) replaced their storage."""
        self.flat = torch.cat([_in_memory_order(p.detach(), p) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = self.flat.as_strided(p.shape, p.stride(), offset)
            offset += p.numel()
        self.pointers = [p.data_ptr() for p in self.params]
        self.grad = torch.empty_like(self.flat)
        state = self.state[self.params[0]]
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key] = state[key].to(self.flat)

    def _intact(self) -> bool:
        """Whether every parameter is still its slice of the flat buffer."""
        return all(p.data_ptr() == ptr for p, ptr in zip(self.params, self.pointers))

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: D102 - torch.optim.Optimizer.step
        if closure is not None:
            raise ValueError("FlatAdam takes no closure")
        if not self._intact():
            self._flatten()
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            raise RuntimeError("FlatAdam updates all its parameters together: every one needs a gradient")
        torch.cat([_in_memory_order(g, p) for g, p in zip(grads, self.params)], out=self.grad)
        group = self.param_groups[0]
        (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
        state = self.state[self.params[0]]
        if not state:
            state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(self.flat),
                         exp_avg_sq=torch.zeros_like(self.flat))
        state["step"] += 1
        step = state["step"].item()
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(self.grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        step_size = (lr / (1 - beta1 ** step)) * -1
        denom = exp_avg_sq.sqrt().div_((1 - beta2 ** step) ** 0.5).add_(eps)
        self.flat.addcdiv_(exp_avg, denom, value=step_size)
