"""The one interface every objective implements, and the noise source the runner hands it.

An objective owns its networks (asked from the shared `models.NetFactory`) and optimisers,
and advances training by one *generator step* per ``step`` call. All tensors carry R
stacked runs on dim 0; every loss is computed per run (shape ``(R,)``) and summed before
differentiation, so each run receives exactly its own gradient.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from core import streams
from core.counter import CounterStream
from models import NetFactory
from objectives.flat_adam import FlatAdam, flattenable


class RunStreams:
    """The random streams of R stacked runs for one role (`core.streams`): a
    ``torch.Generator`` per run on the CPU; on CUDA (or with ``counter``) one counter-based
    draw for every run (`draws_by_counter`). Saved and restored as one list."""

    def __init__(self, seeds: Sequence[int], role: str, device: torch.device | str, counter: bool | None = None):
        self.device = torch.device(device)
        self.counter = draws_by_counter(self.device, seeds, role, counter)
        self.generators = [] if self.counter is not None else streams.generators(seeds, role, device)

    def state_dict(self) -> list[Tensor]:
        return [self.counter.state_dict()] if self.counter is not None else [g.get_state() for g in self.generators]

    def load_state_dict(self, states: Sequence[Tensor]) -> None:
        if self.counter is not None:
            self.counter.load_state_dict(states[0])
        for g, s in zip(self.generators, states):
            g.set_state(s)


class NoiseSource(RunStreams):
    """Per-run noise ``z``: run r draws ``noise_dims[r]`` values from its own stream
    (`core.streams`, run seed and ``role``) and is zero-padded to the largest noise
    dimension of the stack (see `models.stacked`).

    On the CPU each run has a ``torch.Generator``. On CUDA (or with ``counter``) every run's
    noise comes from one counter-based draw (`core.counter`): a few kernels per draw
    whatever the number of runs, each run still on its own stream, advanced by a CUDA graph
    on replay; those are other numbers than the CPU's."""

    def __init__(self, noise_dims: Sequence[int], seeds: Sequence[int], device: torch.device,
                 distribution: str = "normal", role: str = "noise", counter: bool | None = None):
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"unknown noise distribution {distribution!r}; use normal or uniform")
        super().__init__(seeds, role, device, counter)
        self.noise_dims, self.distribution = list(noise_dims), distribution
        self.width = max(self.noise_dims)
        if self.counter is not None:  # run r's value (i, j) is number i * dims[r] + j of its stream
            self.dims = torch.tensor(self.noise_dims, device=self.device).view(-1, 1, 1)
            self.columns = torch.arange(self.width, device=self.device)
            self.used = self.columns < self.dims

    def __call__(self, n: int) -> Tensor:
        """Noise of shape ``(R, n, max noise dim)``: N(0, 1) or U(-1, 1) per run."""
        if self.counter is not None:
            positions = torch.arange(n, device=self.device).view(1, n, 1) * self.dims + self.columns
            sizes = n * self.dims.view(-1)
            if self.distribution == "normal":
                z = self.counter.normal(positions, sizes)
            else:
                z = self.counter.uniform(positions, sizes).mul_(2).sub_(1)
            return z * self.used
        zs = []
        for gen, dim in zip(self.generators, self.noise_dims):
            if self.distribution == "normal":
                z = torch.randn(n, dim, generator=gen, device=self.device)
            else:
                z = torch.rand(n, dim, generator=gen, device=self.device).mul_(2).sub_(1)
            zs.append(z if dim == self.width else nn.functional.pad(z, (0, self.width - dim)))
        return torch.stack(zs)



def draws_by_counter(device: torch.device, seeds: Sequence[int], role: str,
                     counter: bool | None = None) -> CounterStream | None:
    """A counter-based stream per run for ``role`` (`core.counter`) where draws go that way:
    on CUDA by default (launches bound a GPU step), never on the CPU unless ``counter``
    asks for it (the CPU keeps its generators' numbers)."""
    if not (device.type == "cuda" if counter is None else counter):
        return None
    return CounterStream([streams.stream_seed(s, role) for s in seeds], device)


# The CPU's fused Adam rounds an element differently in its vector body and its scalar tail,
# so a run's update would depend on where its slice falls in a stacked tensor (a stack would
# no longer equal its runs alone; tests/2_objectives/test_optim.py); the per-tensor ops are exact there.
POSITION_DEPENDENT_FUSED = ("cpu",)


def fused_devices() -> tuple[str, ...]:
    """The device types on which Adam uses the fused kernel: those torch.optim lists as
    supported by this build, less `POSITION_DEPENDENT_FUSED`."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # a torch without the list: torch's default implementation everywhere
        return ()
    return tuple(d for d in _get_fused_kernels_supported_devices() if d not in POSITION_DEPENDENT_FUSED)


def make_optimizer(params: Iterable[nn.Parameter], kind: str, lr: float,
                   betas: tuple[float, float] = (0.5, 0.999), decay: float = 0.99) -> torch.optim.Optimizer:
    """Adam (``betas``) or RMSprop (``decay``: the squared-gradient average's decay, torch's
    ``alpha``, Flux's and TensorFlow's ``rho``/``decay``); both act elementwise, so stacked
    runs stay independent.

    Adam uses the fused kernel (one pass over all parameters: far fewer small ops than the
    per-tensor loop on tiny networks) where `fused_devices` allows it for the parameters'
    device type (CUDA), and elsewhere `FlatAdam`: torch's (foreach) arithmetic over one flat
    tensor, bit for bit, in a handful of ops instead of about eight per tensor. On CUDA both are
    ``capturable`` (step counters on the device), so a training step can be captured as a
    CUDA graph (`engine.graphs`).
    """
    params = list(params)
    capturable = bool(params) and params[0].is_cuda
    if kind == "adam":
        fused = bool(params) and params[0].device.type in fused_devices()
        if not fused and not capturable and flattenable(params):
            return FlatAdam(params, lr=lr, betas=betas)
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None, capturable=capturable)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=decay, foreach=True, capturable=capturable)
    raise ValueError(f"unknown optimizer {kind!r}; use adam or rmsprop")


def set_grads(loss: Tensor, params: Sequence[nn.Parameter], retain_graph: bool = False) -> None:
    """Store d(loss)/d(params) in ``.grad`` without touching any other parameter's gradient.

    Each gradient is stored in its parameter's memory layout (contiguous for a contiguous
    parameter), as ``backward`` stores them: ``autograd.grad`` hands gradients over as
    computed (a transposed product gives a transposed view, see `models.stacked`), and the
    fused Adam kernel walks parameter and gradient memory in the same order, so a gradient
    laid out differently from its parameter would be applied to the wrong elements."""
    for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=retain_graph)):
        p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)


@dataclass(frozen=True)
class Diagnostic:
    """How tables and figures show one diagnostic an objective returns from `Objective.step`."""

    label: str  # axis and legend text (matplotlib mathtext allowed)
    log: bool = False  # plot on a log scale (positive quantities spanning decades, e.g. an MMD)


class Objective(ABC):
    """Trains ``self.generator`` by one generator step per `step` call.

    Subclasses set ``name``, ``defaults`` (hyperparameters per data kind, ``"toy"`` and
    ``"image"``), build their networks from the factory in ``__init__`` (registering them
    with `add_net` / `add_optimizer` so state saving is automatic) and implement `step`.

    ``dataset_defaults`` may refine the kind's defaults for a family of data sets (e.g. the
    authors' MNIST settings). An objective also describes itself, so that no code outside
    ``objectives/`` needs to know it by name: ``display_name`` (tables and figures; defaults to ``name``),
    ``diagnostic_info`` (label and scale of each value `step` returns), ``trace_pair`` (the
    diagnostics drawn together in a trace's first panel: the generator's loss and the other
    player's objective) and `critic_steps` (cost per generator step).
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1  # bump when a change makes the same hyperparameters train differently
    display_name: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Mapping[str, Any]]]
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    diagnostic_info: ClassVar[Mapping[str, Diagnostic]] = {}
    trace_pair: ClassVar[tuple[str, ...]] = ("loss_g",)

    @classmethod
    def critic_steps(cls, hp: Mapping[str, Any]) -> int:
        """Critic (discriminator, projector, encoder) updates per generator step under ``hp``
        (the shared hyperparameter ``n_critic`` where there is one, else 1); with the
        generator's own update they set the relative cost of a step."""
        return int(hp.get("n_critic", 1))

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The self-description as plain data, stored in every record so that tables and
        figures can name and draw an objective without importing it."""
        return {"name": cls.name, "display_name": cls.display_name or cls.name,
                "diagnostics": {k: asdict(d) for k, d in cls.diagnostic_info.items()},
                "trace_pair": list(cls.trace_pair)}

    def __init__(self, factory: NetFactory, noise: NoiseSource, hp: Mapping[str, Any]):
        self.factory, self.noise, self.hp = factory, noise, dict(hp)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.generator = self.add_net("generator", factory.generator())

    @property
    def batches_per_step(self) -> int:
        """How many real batches one generator step consumes (MMD-GAN: n_critic + 1)."""
        return 1

    @abstractmethod
    def step(self, real: Tensor) -> dict[str, Tensor]:
        """One generator step on ``real`` of shape ``(batches_per_step, R, B, *x_shape)``.

        Returns scalar diagnostics per run, each of shape ``(R,)``, always in the same
        order; the runner stores them without synchronising with the device.
        """

    def add_net(self, name: str, net: nn.Module) -> nn.Module:
        self.nets[name] = net
        return net

    def add_optimizer(self, name: str, params: Iterable[nn.Parameter], kind: str = "adam",
                      lr: float | None = None) -> torch.optim.Optimizer:
        """An optimiser from the hyperparameters ``optimizer``, ``lr``, ``beta1``, ``beta2``
        (Adam) and ``rmsprop_decay`` (RMSprop); those an objective does not declare take
        Adam's (0.5, 0.999) of the papers here and torch's RMSprop decay 0.99."""
        betas = (self.hp.get("beta1", 0.5), self.hp.get("beta2", 0.999))
        opt = make_optimizer(params, self.hp.get("optimizer", kind), lr or self.hp["lr"], betas,
                             self.hp.get("rmsprop_decay", 0.99))
        self.optimizers[name] = opt
        return opt

    def features(self, x: Tensor) -> Tensor | None:
        """The learned low-dimensional view of ``x`` (projector / encoder), if the objective has one."""
        return None

    def random_streams(self) -> list[NoiseSource]:
        """Random streams the objective draws from besides ``self.noise`` (saved in its
        `state_dict`); a CUDA graph of the step registers their generators."""
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"nets": {k: v.state_dict() for k, v in self.nets.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, v in state["nets"].items():
            self.nets[k].load_state_dict(v)
        for k, v in state["optimizers"].items():
            self.optimizers[k].load_state_dict(v)
