"""Objectives by name: the built-in four, plus any registered from outside the package.

Three ways in, all ending in `register`:
- decorate a class inside the package (the built-ins do this);
- ``load_plugin("path/to/file.py")`` or ``load_plugin("package.module")`` (the CLIs'
  ``--plugin`` option), importing a module whose classes use ``@register``;
- a Python entry point in the group ``gramharness.objectives`` (loaded on first lookup).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from objectives.base import NoiseSource, Objective
from models import NetFactory

ENTRY_POINT_GROUP = "gramharness.objectives"
REGISTRY: dict[str, type[Objective]] = {}
_entry_points_loaded = False


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available as ``objectives.get(cls.name)``."""
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise TypeError(f"{cls!r} is not an Objective subclass")
    missing = {"toy", "image"} - set(getattr(cls, "defaults", {}))
    if not getattr(cls, "name", None) or missing:
        raise TypeError(f"{cls.__name__} needs a `name` and `defaults` for {sorted(missing) or 'toy/image'}")
    REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            ep.load()


def load_plugin(spec: str) -> None:
    """Import ``spec`` (a ``.py`` file path or a dotted module name) so its objectives register."""
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.is_file():
            raise FileNotFoundError(f"plugin file {spec} does not exist")
        name = f"gram_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def names() -> list[str]:
    """Every registered objective name (built-ins first, then plugins, in registration order)."""
    _load_entry_points()
    return list(REGISTRY)


def get(name: str) -> type[Objective]:
    """The objective class registered as ``name``; ``KeyError`` lists the known names."""
    _load_entry_points()
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def hyperparameters(name: str, kind: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The objective's defaults for data kind ``kind`` updated by ``overrides``.

    Unknown keys are rejected so that a typo in ``--set`` cannot silently do nothing.
    """
    hp = dict(get(name).defaults[kind])
    unknown = set(overrides or {}) - set(hp)
    if unknown:
        raise KeyError(f"{name} has no hyperparameter {', '.join(sorted(unknown))}; known: {', '.join(sorted(hp))}")
    hp.update(overrides or {})
    return hp


def build(name: str, factory: NetFactory, noise: NoiseSource, kind: str,
          overrides: Mapping[str, Any] | None = None) -> Objective:
    """Instantiate objective ``name`` with its ``kind`` defaults and ``overrides``."""
    return get(name)(factory, noise, hyperparameters(name, kind, overrides))
