"""Data sets by name: toy mixtures with known modes (and image data sets, registered alike).

``data.get(name)`` returns an object with ``name``, ``kind`` (``"toy"`` or ``"image"``),
``x_shape`` and ``train_set(seed) -> Tensor (N, *x_shape)``. Toy sets also expose
``centres``, ``std`` and ``sample(n, generator)`` for the metrics. Image sets
(`data.images`) add ``images_uint8()``, ``train_labels()`` and ``output_activation``.

A name registered with a trailing colon (``"folder:"``) is a prefix: ``get("folder:PATH")``
calls that builder with ``"PATH"`` as its first argument.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data import images
from data.toy import MixtureDataset, grid, ring2d, ring3d

DATASETS: dict[str, Callable[..., Any]] = {"ring2d": ring2d, "ring3d": ring3d, "grid": grid}


def register(name: str, builder: Callable[..., Any]) -> None:
    """Make ``data.get(name)`` call ``builder(**options)``."""
    DATASETS[name] = builder


for _name, _builder in {**images.BUILDERS, "folder:": images.folder}.items():
    register(_name, _builder)


def names() -> list[str]:
    return sorted(DATASETS)


def known(name: str) -> bool:
    """True if ``get(name)`` has a builder (a registered name or a registered ``prefix:``)."""
    return name in DATASETS or (":" in name and name.split(":", 1)[0] + ":" in DATASETS)


def get(name: str, **options: Any) -> Any:
    """The data set ``name``; raises ``KeyError`` with the known names if there is none."""
    if name in DATASETS:
        return DATASETS[name](**options)
    if known(name):
        prefix, arg = name.split(":", 1)
        return DATASETS[prefix + ":"](arg, **options)
    raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(names())}")


__all__ = ["DATASETS", "MixtureDataset", "get", "known", "names", "register"]
