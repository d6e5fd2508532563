"""The one typed run configuration: every setting of a training run, resolved and checked.

A `RunConfig` is complete the moment it exists: ``hp`` given as overrides (or not at all) is
resolved in ``__post_init__`` to the objective's full set of hyperparameters for the data
set's kind, each override checked against its default (`objectives.hyperparameters`). So the
configuration a record stores is the one that trained, every default included, and its
`key` (a hash of all of it) identifies the run: equal keys, equal training.

The field defaults below are the paper's ring setting (its length and batch: `core.paper`)
and the defaults of every command line that leaves a field unset.

Code changes that change what a configuration trains into are part of its identity too:
``engine_version`` (`ENGINE_VERSION`: the engine, networks and data),
``objective_version`` (the objective's ``version``) and ``objective_digest`` (a hash of the
objective's own source file, built-in or plugin: any edit to it) are filled in from the
code, so records trained before such a change are never taken for records of the current
code.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import data
import objectives
from core import paper
from core.files import config_key, file_digest
from core.limits import LIMITS  # upper bounds of the sizes, which every command checks
from engine.ema import check_decay
from models import ARCHITECTURES

ENGINE_VERSION = 4  # bump when a change to engine/, models/ or data/ changes trained numbers
NOISES = ("normal", "uniform")
# network layers in float32, or under bfloat16 autocast (opt in; kernel math stays float32)
LAYER_DTYPES = ("float32", "bfloat16")
# the device kind a run trains on: CUDA's random generators draw other numbers than the CPU's,
# so the same configuration trained on each gives different (equally valid) runs
DEVICE_KINDS = ("cpu", "cuda")
MAX_SEED = 2**32 - 1
MAX_STACK = 1_024  # runs trained as one batched model


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run. ``hp`` holds every hyperparameter of the
    objective: given ones are checked overrides, the rest are the objective's defaults."""

    model: str = "gram"
    dataset: str = "ring2d"
    arch: str = "mlp"
    noise_dim: int = 4
    width: int = 100
    depth: int = 2
    steps: int = paper.RING_STEPS
    batch: int = paper.RING_BATCH
    seed: int = 0
    noise: str = "normal"
    n_samples: int = paper.SAMPLES
    ema: float = 0.0  # decay of the generator's moving average, also scored and stored (engine.ema); 0 = off
    layer_dtype: str = "float32"  # the network layers' dtype: float32, or bfloat16 autocast (opt in)
    device: str = "cpu"  # the device kind, set by the sweep from where it places the run
    hp: tuple[tuple[str, Any], ...] = field(default=())
    engine_version: int = field(default=ENGINE_VERSION, init=False)
    objective_version: int = field(default=0, init=False)
    objective_digest: str = field(default="", init=False)

    def __post_init__(self) -> None:
        for name, limit in LIMITS.items():
            value, label = getattr(self, name), name.replace("n_", "").replace("_", "-")  # as the options say it
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
            if value > limit:
                raise ValueError(f"{label} must be at most {limit:,}, got {value:,}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {self.seed!r}")
        object.__setattr__(self, "ema", check_decay(self.ema))
        if self.noise not in NOISES:
            raise ValueError(f"unknown noise distribution {self.noise!r}; use {' or '.join(NOISES)}")
        if self.layer_dtype not in LAYER_DTYPES:
            raise ValueError(f"unknown layer dtype {self.layer_dtype!r}; use {' or '.join(LAYER_DTYPES)}")
        if self.device not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind {self.device!r}; use {' or '.join(DEVICE_KINDS)}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose from {', '.join(ARCHITECTURES)}")
        if not data.known(self.dataset):
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {', '.join(data.names())}")
        if self.model not in objectives.names():
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(objectives.names())}")
        hp = objectives.hyperparameters(self.model, self.kind, dict(self.hp), self.family)
        object.__setattr__(self, "hp", tuple(sorted(hp.items())))
        object.__setattr__(self, "engine_version", ENGINE_VERSION)
        object.__setattr__(self, "objective_version", objectives.get(self.model).version)
        object.__setattr__(self, "objective_digest", source_digest(objectives.get(self.model)))

    @property
    def kind(self) -> str:
        """The data set's kind, ``"toy"`` or ``"image"``: which defaults apply."""
        return data.get(self.dataset).kind

    @property
    def family(self) -> str:
        """The data set's family (e.g. ``"mnist"`` for mnist and mnist5k): which per-data-set
        defaults of the objective apply on top of its kind's."""
        return getattr(data.get(self.dataset), "family", "")

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hp)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes``; ``hp`` in ``changes`` updates (not replaces) the current
        hyperparameters, and a new model or data set starts from its own defaults."""
        hp = changes.pop("hp", {})
        keep = {} if {"model", "dataset"} & set(changes) else self.hyperparameters
        return dataclasses.replace(self, **changes, hp=tuple({**keep, **dict(hp)}.items()))

    def stack_key(self) -> tuple:
        """Runs with equal keys can be trained in one stack: they differ in seed, noise
        dimension and generator width only (see `models.stacked` for the widths)."""
        return dataclasses.astuple(dataclasses.replace(self, seed=0, noise_dim=1, width=1))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: every field, ``hp`` as a dict with lists for tuples."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hp"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hp}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """The configuration of plain data, trained with the current code (the versions are
        the current code's, not those stored in ``d``)."""
        hp = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(d.get("hp", {})).items()}
        given = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in d.items() if k in given and k != "hp"}, hp=tuple(hp.items()))

    def key(self) -> str:
        """The run's identity: a hash of the complete configuration (see `config_key`)."""
        return config_key(self.to_dict())


@functools.cache
def source_digest(cls: type) -> str:
    """The short SHA-256 of the file that defines ``cls`` ("" when it has none, e.g. a class
    made in an interactive session). Read once per class, when a process first configures a
    run of it: the code that process trains with, even if the file is edited meanwhile."""
    try:
        source = inspect.getsourcefile(cls)
        return file_digest(source)[:12] if source else ""
    except (TypeError, OSError):
        return ""


def field_default(name: str) -> Any:
    """The default of `RunConfig` field ``name`` (what every command line shows and uses)."""
    return next(f.default for f in dataclasses.fields(RunConfig) if f.name == name)
