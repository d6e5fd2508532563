"""Layers that hold R independent runs in one set of tensors.

A stacked network maps ``(R, B, *in_shape) -> (R, B, *out_shape)``: run r only ever sees
its own slice of every parameter. Because Adam, RMSprop and weight clipping act
elementwise, optimising the stacked tensors is exactly optimising R separate networks,
while each matrix product covers all runs at once (one ``baddbmm`` instead of R ``addmm``).

Runs in a stack may have different true input sizes (for example different noise
dimensions): inputs are zero-padded to the largest size and the padded weight rows start
at zero. Their gradient is ``padded_input^T @ delta = 0``, so they stay zero and the run
computes exactly what an unpadded network would.

Runs may also have different hidden widths (a sweep stacks a whole grid), held in one of
two ways (`models.factory` picks by device). Padded, for a GPU, where every kernel launch
costs time: every layer is as wide as the widest run, and a run's units beyond its own
width are masked to zero after each activation. Their weights start at zero, no gradient
reaches them (the mask blocks it, and their inputs are zero), so the optimisers' state for
them stays zero and they never move: the run computes what a network of its own width
computes, up to the rounding of longer (zero-padded) sums. Grouped (`WidthGroups`), for a
CPU, where arithmetic costs time: one stacked network per width, so no run computes at a
width not its own, while the rest of the objective (critics, kernels, optimisers) still
covers every run of the stack at once.

Speed on the CPU (each a change of layout, never of the mathematics): a batched product
whose output has a narrow last dimension (a layer's 2 or 10 outputs, the gradient of a
2-wide input, a 100 x 10 weight gradient) runs several times slower than the same product
computed transposed, ``(B^T A^T)^T``, so a layer with a narrow output computes each of its
products in the orientation with the wide output (`StackedLinear`), and stores its weight as
``(R, out, in)`` so the transposed forward product reads a contiguous operand (with MKL's
AVX-512 kernels a transposed product over a ``(R, in, out)`` weight was slower than the plain
one: 1.05 ms against 0.06 ms for a generator's output layer on 1,000 fakes, stack of 4);
products with a wide output keep their plain layout, so the large activations and gradients
between layers stay contiguous (an elementwise op that mixes layouts is itself several times
slower). Hidden activations act in place on the products' fresh outputs (no extra tensor per
layer and pass).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


INPLACE = {"relu": lambda: nn.ReLU(inplace=True), "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True)}


def activation(name: str, inplace: bool = False) -> nn.Module:
    """An activation module by name (``relu``, ``leaky_relu``, ``tanh``, ``elu``, ...); with
    ``inplace``, one that overwrites its input where it has such a form (for inputs nothing
    else reads: autograd saves these activations' outputs, not their inputs)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    return INPLACE[name]() if inplace and name in INPLACE else ACTIVATIONS[name]()


# A batched product's output is narrow below this many columns: computed transposed it then
# ran 2.5-3x faster on the CPU (outputs 2 and 10 wide), while from 16 columns on both orientations
# ran alike, and the plain one keeps the large activations and gradients contiguous.
NARROW = 16


def _narrow(a: Tensor, b: Tensor) -> bool:
    """Whether the product ``a @ b`` has a narrow output: fewer than `NARROW` columns, and fewer than rows."""
    return b.shape[-1] < min(NARROW, a.shape[-2])


def _wide_product(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b (+ bias)`` for batched matrices (R, m, k) @ (R, k, n), computed as
    ``(b^T a^T + bias^T)^T`` when its output is narrow."""
    if _narrow(a, b):
        return (torch.bmm(b.mT, a.mT) if bias is None else torch.baddbmm(bias.mT, b.mT, a.mT)).mT
    return torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)


class _NarrowAffine(torch.autograd.Function):
    """``x @ weight + bias`` for a layer with a narrow output, each of its three products
    (output, input gradient, weight gradient) computed in the orientation whose output is
    wide (`_wide_product`). The bias gradient is the plain sum over the batch, as autograd's,
    so a run's numbers do not depend on its stack. The backward is made of differentiable
    ops, so double backward (WGAN-GP's gradient penalty) works through it."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        kind = x.device.type  # backward runs under the forward's autocast (bfloat16 products, `RunConfig.layer_dtype`)
        ctx.autocast = {"device_type": kind, "enabled": torch.is_autocast_enabled(kind),
                        "dtype": torch.get_autocast_dtype(kind)}
        return _wide_product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        cast = ctx.autocast  # entered only where it changes something (a context costs microseconds)
        with torch.autocast(**cast) if cast["enabled"] or torch.is_autocast_enabled(cast["device_type"]) \
                else contextlib.nullcontext():
            gx = _wide_product(grad, weight.mT) if ctx.needs_input_grad[0] else None
            gw = _wide_product(x.mT, grad) if ctx.needs_input_grad[1] else None
        gb = grad.sum(-2, keepdim=True) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class StackedLinear(nn.Module):
    """R affine maps ``x[r] @ weight[r] + bias[r]``; ``weight`` is ``(R, in, out)``.

    A layer with a narrow output (the last of a critic or generator on toy data) computes
    every product with a narrow output transposed (`_NarrowAffine`): the same sums, several
    times faster on the CPU (see the module docstring); its weight is stored in memory as
    ``(R, out, in)``. Any other layer is one ``baddbmm``.
    """

    def __init__(self, runs: int, in_features: int, out_features: int):
        super().__init__()
        # a narrow layer's weight is stored as (R, out, in), ``weight`` its transposed view:
        # its forward product, computed transposed, then reads a contiguous operand
        weight = torch.zeros(runs, out_features, in_features).mT if out_features < NARROW \
            else torch.zeros(runs, in_features, out_features)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(runs, 1, out_features))

    def reset(self, generators: Sequence[torch.Generator], fan_ins: Sequence[int],
              fan_outs: Sequence[int] | None = None) -> None:
        """Glorot-uniform weights, U(-b, b) with b = sqrt(6 / (fan_in + fan_out)), and zero
        biases, per run over its true ``fan_ins`` rows and ``fan_outs`` columns (padding stays
        zero): Flux's default for ``Dense``, which the authors' ring code (JuliaGRAM) relies on."""
        with torch.no_grad():
            self.weight.zero_()
            self.bias.zero_()
            fan_outs = fan_outs or [self.weight.shape[-1]] * len(generators)
            for r, (gen, fan_in, out) in enumerate(zip(generators, fan_ins, fan_outs)):
                bound = math.sqrt(6.0 / (fan_in + out))
                self.weight[r, :fan_in, :out].copy_(torch.empty(fan_in, out).uniform_(-bound, bound, generator=gen))

    def forward(self, x: Tensor) -> Tensor:
        if _narrow(x, self.weight):
            return _NarrowAffine.apply(x, self.weight, self.bias)
        return torch.baddbmm(self.bias, x, self.weight)


def _like_input(out: Tensor, x: Tensor) -> Tensor:
    """A network's output in its input's dtype: under bfloat16 autocast (`RunConfig.layer_dtype`)
    the layers compute in bfloat16, and what leaves the network is float32 again, so losses,
    kernels and mixes of generated with real data see one dtype."""
    return out if out.dtype == x.dtype or not x.is_floating_point() else out.to(x.dtype)


class StackedMLP(nn.Module):
    """An MLP per run: ``in -> [hidden, activation] x depth -> out [-> out_activation]``.

    Inputs ``(R, B, *in_shape)`` are flattened to ``(R, B, in)``; outputs are reshaped to
    ``(R, B, *out_shape)``. ``widths`` (one per run, at most ``hidden``'s sizes) makes run r
    a network of width ``widths[r]`` in every hidden layer (see the module docstring).
    """

    def __init__(self, runs: int, in_shape: Sequence[int], hidden: Sequence[int],
                 out_shape: Sequence[int], act: str = "relu", out_act: str = "identity",
                 widths: Sequence[int] | None = None):
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        sizes = [math.prod(self.in_shape), *hidden, math.prod(self.out_shape)]
        self.linears = nn.ModuleList(StackedLinear(runs, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        # in place, except after a layer narrow enough for `_NarrowAffine`, whose output is a view
        self.acts = nn.ModuleList(activation(act, inplace=h >= NARROW) for h in hidden)
        self.out_act = activation(out_act)
        self.in_sizes = [sizes[0]] * runs
        self.widths = list(widths) if widths is not None else None
        mask = None
        if self.widths is not None and len(set(self.widths)) > 1:
            top = max(hidden)
            mask = (torch.arange(top).view(1, 1, top) < torch.tensor(self.widths).view(-1, 1, 1)).float()
        self.register_buffer("mask", mask, persistent=False)

    def reset(self, generators: Sequence[torch.Generator], in_sizes: Sequence[int] | None = None) -> None:
        """Initialise each run from its own generator; ``in_sizes`` are the runs' true input sizes."""
        self.in_sizes = list(in_sizes or self.in_sizes)
        runs = len(generators)
        for i, lin in enumerate(self.linears):
            fan_ins = self.in_sizes if i == 0 else self._run_sizes(lin.weight.shape[1], runs)
            last = i == len(self.linears) - 1
            lin.reset(generators, fan_ins, None if last else self._run_sizes(lin.weight.shape[2], runs))

    def _run_sizes(self, size: int, runs: int) -> list[int]:
        """Each run's true size of a hidden layer that is ``size`` wide."""
        return [min(size, w) for w in self.widths] if self.widths is not None else [size] * runs

    def forward(self, x: Tensor) -> Tensor:
        r, b = x.shape[:2]
        h = x.reshape(r, b, -1)
        for lin, act in zip(self.linears, self.acts):
            h = act(lin(h))
            if self.mask is not None:
                h = h * self.mask[..., :h.shape[-1]]
        return _like_input(self.out_act(self.linears[-1](h)).reshape(r, b, *self.out_shape), x)

    def run_state_dict(self, r: int, in_size: int | None = None) -> dict[str, Tensor]:
        """Run r's weights as a 1-run `StackedMLP` of its own input size (``in_size``, by
        default the size it was reset with) and width: the padding dropped."""
        state = {k: v[r:r + 1].detach().clone() for k, v in self.state_dict().items()}
        in_size = in_size or self.in_sizes[r]
        state["linears.0.weight"] = state["linears.0.weight"][:, :in_size].clone()
        if self.widths is not None:
            w, last = self.widths[r], len(self.linears) - 1
            for i in range(len(self.linears)):
                weight, bias = f"linears.{i}.weight", f"linears.{i}.bias"
                state[weight] = state[weight][:, :, :w].clone() if i < last else state[weight]
                state[weight] = state[weight][:, :w].clone() if i > 0 else state[weight]
                state[bias] = state[bias][:, :, :w].clone() if i < last else state[bias]
        return state


class WidthGroups(nn.Module):
    """R runs of several generator widths held as one stacked network per width, ``nets[g]``
    training the runs ``groups[g]`` (indices into the stack), where a padded `StackedMLP`
    would compute every run at the widest run's size. Each run computes exactly what it
    computes in a stack of its own width; inputs and outputs keep the stack's run order."""

    def __init__(self, nets: Sequence[nn.Module], groups: Sequence[Sequence[int]]):
        super().__init__()
        self.nets, self.groups = nn.ModuleList(nets), [list(g) for g in groups]
        order = [r for g in self.groups for r in g]
        if sorted(order) != list(range(len(order))):
            raise ValueError("groups must hold every run of the stack once")
        self.place = {r: (g, i) for g, runs in enumerate(self.groups) for i, r in enumerate(runs)}
        self.sizes = [len(g) for g in self.groups]
        # runs of a width that sit together in the stack are slices; otherwise gathered and put back
        self.in_order = order == list(range(len(order)))
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("inverse", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        parts = (x if self.in_order else x.index_select(0, self.order)).split(self.sizes)
        out = torch.cat([net(part) for net, part in zip(self.nets, parts)])
        return out if self.in_order else out.index_select(0, self.inverse)

    def run_state_dict(self, r: int, in_size: int | None = None) -> dict[str, Tensor]:
        """Run r's weights as a 1-run network of its own width (see `StackedMLP.run_state_dict`)."""
        g, i = self.place[r]
        return self.nets[g].run_state_dict(i, in_size)


class PerRun(nn.Module):
    """R independent copies of an ordinary network (e.g. a conv net) behind the stacked
    interface ``(R, B, *in) -> (R, B, *out)``. Runs are evaluated one after another."""

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.nets) == 1:
            return _like_input(self.nets[0](x[0]).unsqueeze(0), x)
        return _like_input(torch.stack([net(xr) for net, xr in zip(self.nets, x)]), x)

    def run_state_dict(self, r: int, in_size: int | None = None) -> dict[str, Tensor]:
        """Run r's weights as a 1-run `PerRun`."""
        return {f"nets.0.{k}": v.detach().clone() for k, v in self.nets[r].state_dict().items()}
