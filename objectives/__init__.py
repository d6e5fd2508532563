"""Training objectives behind one interface (`objectives.base.Objective`) and a registry.

``objectives.get("gram")`` returns the class; ``objectives.names()`` lists every registered
objective, including plugins (see `objectives.registry`). Shared kernel math lives in
`objectives.kernels`, hyperparameter checking in `objectives.hyperparameters`.

Importing the package is light: the interface (and torch with it) is imported on first use,
so a command can check ``--models`` against `known_names` and answer ``--help`` at once.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from typing import Any

BUILTINS = ("gan", "mmdnet", "mmdgan", "gram", "wgangp")  # modules registering on import, the paper's order
ENTRY_POINT_GROUP = "gramharness.objectives"
_INTERFACE = {"Diagnostic": "base", "NoiseSource": "base", "Objective": "base", "PluginError": "registry",
              "build": "registry", "get": "registry", "hyperparameters": "registry", "load_plugin": "registry",
              "loaded_plugins": "registry", "names": "registry", "register": "registry"}

__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "Diagnostic", "NoiseSource", "Objective", "PluginError", "build", "get",
           "hyperparameters", "known_names", "load_plugin", "loaded_plugins", "names", "register"]


def __getattr__(name: str) -> Any:
    """The interface (and ``objectives.registry``), imported with the built-ins on first use."""
    if name not in _INTERFACE and name != "registry":
        raise AttributeError(f"module 'objectives' has no attribute {name!r}")
    importlib.import_module("objectives.registry").load_builtins()
    return globals()[name]


def publish() -> None:
    """Bind the interface's names here (the registry calls it once it is imported): the
    function ``hyperparameters``, not the submodule of that name."""
    for name, module in _INTERFACE.items():
        globals()[name] = getattr(sys.modules[f"objectives.{module}"], name)


def known_names() -> list[str]:
    """`names`, without importing the objectives (and torch) while only the built-ins can be
    registered: no registry in use yet and no installed entry point of `ENTRY_POINT_GROUP`."""
    if "objectives.registry" in sys.modules or importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        return __getattr__("names")()
    return list(BUILTINS)
