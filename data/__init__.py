"""Data sets by name: toy mixtures with known modes (and image data sets, registered alike).

``data.get(name)`` returns an object with ``name``, ``kind`` (``"toy"`` or ``"image"``),
``x_shape`` and ``train_set(seed) -> Tensor (N, *x_shape)``. Toy sets also expose
``centres``, ``std`` and ``sample(n, generator)`` for the metrics.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data.toy import MixtureDataset, grid, ring2d, ring3d

DATASETS: dict[str, Callable[..., Any]] = {"ring2d": ring2d, "ring3d": ring3d, "grid": grid}


def register(name: str, builder: Callable[..., Any]) -> None:
    """Make ``data.get(name)`` call ``builder(**options)``."""
    DATASETS[name] = builder


def names() -> list[str]:
    return sorted(DATASETS)


def get(name: str, **options: Any) -> Any:
    """The data set ``name``; raises ``KeyError`` with the known names if there is none."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(names())}")
    return DATASETS[name](**options)


__all__ = ["DATASETS", "MixtureDataset", "get", "names", "register"]
