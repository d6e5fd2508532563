"""Training objectives behind one interface (`objectives.base.Objective`) and a registry.

``objectives.get("gram")`` returns the class; ``objectives.names()`` lists every registered
objective, including plugins (see `objectives.registry`). Shared kernel math lives in
`objectives.kernels`, hyperparameter checking in `objectives.hyperparameters`.
"""
# Built-ins register on import, in the order the paper lists them.
from objectives import gan  # noqa: F401, I001
from objectives import mmdnet  # noqa: F401
from objectives import mmdgan  # noqa: F401
from objectives import gram  # noqa: F401
from objectives import wgangp  # noqa: F401
from objectives.base import Diagnostic, NoiseSource, Objective
from objectives.registry import (ENTRY_POINT_GROUP, PluginError, build, get, hyperparameters, load_plugin, names,
                                 register)

__all__ = ["ENTRY_POINT_GROUP", "Diagnostic", "NoiseSource", "Objective", "PluginError", "build", "get",
           "hyperparameters", "load_plugin", "names", "register"]
