"""Objectives by name: the built-ins, plus any registered from outside the package.

Every way in ends in `register` (see docs/adding-an-objective.md):

- decorate a class inside the package and import its module in ``objectives/__init__.py``;
- ``load_plugin("path/to/file.py")`` or ``load_plugin("package.module")`` (the CLIs'
  ``--plugin`` option), importing a module whose classes use ``@register``;
- a Python entry point in the group ``gramharness.objectives`` of an installed package
  (loaded on the first `names` / `get`).

`register` checks up front what the engine relies on, so a malformed objective fails at
import with a one-line message rather than mid-sweep. Plugins given with ``--plugin`` travel
inside every sweep task, and each worker process loads them before it trains. A plugin
that fails to import, or imports but registers nothing, raises `PluginError`.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from models import NetFactory
from objectives import BUILTINS, ENTRY_POINT_GROUP
from objectives.base import Diagnostic, NoiseSource, Objective
from objectives.hyperparameters import resolve

KINDS = ("toy", "image")
REGISTRY: dict[str, type[Objective]] = {}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a directory name, and no commas for --models a,b
_plugins: dict[str, list[str]] = {}  # plugin key (resolved file or module name) -> names it registered
_entry_points_loaded = False
_builtins_loaded = False


class PluginError(ImportError):
    """A plugin that cannot be imported or registers no objective; ``str(err)`` is one line."""


class PluginWarning(UserWarning):
    """An installed entry-point plugin was skipped because it failed to load."""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check(cls: Any) -> None:
    """Raise ``TypeError`` naming the first thing the engine needs that ``cls`` lacks."""
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise TypeError(f"{cls!r} is not an Objective subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == "all":
        raise TypeError(f"{cls.__name__}.name must be a short name of letters, digits, '_', '.' or '-' "
                        f"(not 'all'), got {name!r}")
    defaults = cls.defaults if isinstance(getattr(cls, "defaults", None), Mapping) else {}
    missing = [k for k in KINDS if not isinstance(defaults.get(k), Mapping)]
    if missing:
        raise TypeError(f"{cls.__name__}.defaults needs a dict of hyperparameters for each data kind; "
                        f"missing {', '.join(missing)}")
    if not all(isinstance(v, Mapping) for v in cls.dataset_defaults.values()):
        raise TypeError(f"{cls.__name__}.dataset_defaults must map data set families to dicts of hyperparameters")
    if not (isinstance(cls.version, int) and cls.version >= 1):
        raise TypeError(f"{cls.__name__}.version must be a positive integer")
    if not isinstance(cls.display_name, str):
        raise TypeError(f"{cls.__name__}.display_name must be a string")
    if not all(isinstance(k, str) and isinstance(d, Diagnostic) for k, d in cls.diagnostic_info.items()):
        raise TypeError(f"{cls.__name__}.diagnostic_info must map diagnostic names to objectives.Diagnostic")
    if not (isinstance(cls.trace_pair, tuple) and all(isinstance(k, str) for k in cls.trace_pair)):
        raise TypeError(f"{cls.__name__}.trace_pair must be a tuple of diagnostic names")
    if inspect.isabstract(cls):
        raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
    taken = REGISTRY.get(name)
    if taken is not None and _qualname(taken) != _qualname(cls):
        raise ValueError(f"objective name {name!r} is already taken by {_qualname(taken)}")


def load_builtins() -> None:
    """Register the built-in objectives (once), before anything else registers: plugins
    come after them in `names`."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in BUILTINS:
        importlib.import_module(f"objectives.{module}")


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available as ``objectives.get(cls.name)``."""
    load_builtins()
    _check(cls)
    REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget objective ``name`` (tests and temporary registrations); unknown names are ignored."""
    REGISTRY.pop(name, None)
    for key, added in list(_plugins.items()):
        if name in added:
            added.remove(name)
            if not added:  # loading it again registers it again
                del _plugins[key]


def _one_line(err: BaseException, origin: str | None) -> str:
    """``"NameError: name 'x' is not defined (plugin.py, line 5)"``: type, message, where."""
    text = " ".join(str(err).split()) or "no message"
    where = ""
    if origin and not isinstance(err, SyntaxError):  # a SyntaxError already says where
        tb = err.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == origin:
                where = f" ({Path(origin).name}, line {tb.tb_lineno})"
            tb = tb.tb_next
    return f"{type(err).__name__}: {text}{where}"


def _import_file(path: Path) -> ModuleType:
    """Execute a .py file as a module named after its stem and full path (so equal stems don't clash)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = "gram_plugin_" + re.sub(r"\W", "_", path.stem) + "_" + digest
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def plugin_key(spec: str) -> str:
    """How a plugin is identified: a .py file by its resolved path, a module by its name."""
    return str(Path(spec).resolve()) if spec.endswith(".py") else spec


def load_plugin(spec: str) -> list[str]:
    """Import ``spec`` (a ``.py`` file path or a dotted module name) so its objectives register.

    Returns the names it registered; loading the same plugin again is a no-op. Raises
    ``FileNotFoundError`` for a missing file and `PluginError` (an ``ImportError``) with a
    one-line message for a plugin that fails to import or registers no objective; nothing
    it registered before failing stays registered.
    """
    key = plugin_key(spec)
    if key in _plugins:
        return list(_plugins[key])
    is_file = spec.endswith(".py")
    if is_file and not Path(key).is_file():
        raise FileNotFoundError(f"plugin file {spec} does not exist")
    _load_entry_points()  # first, so that they are not credited to this plugin
    before = set(REGISTRY)
    origin = key if is_file else None
    try:
        if is_file:
            module = _import_file(Path(key))
        else:
            found = importlib.util.find_spec(spec)
            if found is None:
                raise ModuleNotFoundError(f"No module named {spec!r}")
            origin = found.origin
            module = importlib.import_module(spec)
    except Exception as err:  # noqa: BLE001 - any failure inside a plugin becomes one line
        for name in set(REGISTRY) - before:  # no half-loaded plugins
            del REGISTRY[name]
        raise PluginError(_one_line(err, origin)) from err
    credited = {n for names in _plugins.values() for n in names}  # e.g. by a plugin this one loaded
    added = [n for n in REGISTRY if n not in before and n not in credited]
    if not added:  # imported before (e.g. by another plugin): credit what it defines
        added = [n for n, c in REGISTRY.items() if c.__module__ == module.__name__]
    if not added:
        raise PluginError("it registers no objective; decorate an Objective subclass with "
                          "@objectives.register (see docs/adding-an-objective.md)")
    _plugins[key] = added
    return list(added)


def loaded_plugins() -> tuple[str, ...]:
    """The keys of every plugin loaded so far (`load_plugin` takes them), in load order."""
    return tuple(_plugins)


def _load_entry_points() -> None:
    """Register the objectives of installed packages' entry points (once).

    A broken installed plugin must not take the built-ins down with it, so failures here
    are warnings (`PluginWarning`) and the plugin is skipped.
    """
    global _entry_points_loaded
    load_builtins()
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, type) and REGISTRY.get(getattr(obj, "name", None)) is not obj:
                register(obj)  # an entry point may name the class itself
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"skipping objective entry point {ep.name} = {ep.value}: {_one_line(err, None)}",
                          PluginWarning, stacklevel=3)


def names() -> list[str]:
    """Every registered objective name (built-ins first, then plugins, in registration order)."""
    _load_entry_points()
    first = {name: i for i, name in enumerate(BUILTINS)}  # even when a built-in's module was imported first
    return sorted(REGISTRY, key=lambda name: first.get(name, len(first)))


def get(name: str) -> type[Objective]:
    """The objective class registered as ``name``; ``KeyError`` lists the known names."""
    _load_entry_points()
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def hyperparameters(name: str, kind: str, overrides: Mapping[str, Any] | None = None,
                    family: str = "") -> dict[str, Any]:
    """Objective ``name``'s defaults for data kind ``kind`` (refined by its ``dataset_defaults``
    for data set ``family``) updated by checked ``overrides`` (see `objectives.hyperparameters`);
    ``ValueError`` names a bad key or value."""
    cls = get(name)
    return resolve(name, {**cls.defaults[kind], **cls.dataset_defaults.get(family, {})}, overrides)


def build(name: str, factory: NetFactory, noise: NoiseSource, hp: Mapping[str, Any]) -> Objective:
    """Instantiate objective ``name`` with its complete, resolved hyperparameters ``hp``."""
    return get(name)(factory, noise, dict(hp))


sys.modules["objectives"].publish()  # the package's interface names, now that they exist
