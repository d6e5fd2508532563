"""Objectives by name: the built-ins, plus any registered from outside the package.

Every way in ends in `register` (see docs/adding-an-objective.md):

- decorate a class inside the package and import its module in ``objectives/__init__.py``;
- ``load_plugin("path/to/file.py")`` or ``load_plugin("package.module")`` (the CLIs'
  ``--plugin`` option), importing a module whose classes use ``@register``;
- a Python entry point in the group ``gramharness.objectives`` of an installed package
  (loaded on the first `names` / `get`).

Plugins loaded with `load_plugin` are also listed in the environment variable
``GRAMHARNESS_PLUGINS``, so worker processes started afterwards (the sweeps' joblib
workers) load them too; setting that variable by hand (``os.pathsep``-separated files or
modules) loads plugins without ``--plugin``. A plugin that fails to import, or imports but
registers nothing, raises `PluginError` with a one-line message.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from models import NetFactory
from objectives.base import NoiseSource, Objective

ENTRY_POINT_GROUP = "gramharness.objectives"
PLUGIN_ENV = "GRAMHARNESS_PLUGINS"
REGISTRY: dict[str, type[Objective]] = {}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a directory name, and no commas for --model a,b
_loaded: dict[str, tuple[str, ...]] = {}  # plugin key (resolved file or module name) -> names it registered
_loading: set[str] = set()  # plugin keys being imported right now (a plugin may call names())
_skipped: set[str] = set()  # GRAMHARNESS_PLUGINS entries that failed (warned about once)
_recording: list[list[str]] = []  # names registered by the innermost import in progress
_entry_points_loaded = False


class PluginError(ImportError):
    """A plugin that cannot be imported or registers no objective; ``str(err)`` is one line."""


class PluginWarning(UserWarning):
    """An entry-point or ``GRAMHARNESS_PLUGINS`` plugin was skipped because it failed to load."""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available as ``objectives.get(cls.name)``.

    Checks what the runner relies on up front, so a malformed objective fails at import
    with a clear message rather than mid-sweep.
    """
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise TypeError(f"{cls!r} is not an Objective subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == "all":
        raise TypeError(f"{cls.__name__}.name must be a short name of letters, digits, '_', '.' or '-' "
                        f"(not 'all'), got {name!r}")
    defaults = getattr(cls, "defaults", None)
    missing = {"toy", "image"} - set(defaults if isinstance(defaults, Mapping) else {})
    if missing or not all(isinstance(defaults[k], Mapping) for k in ("toy", "image")):
        raise TypeError(f"{cls.__name__}.defaults needs a dict of hyperparameters for each data kind; "
                        f"missing {', '.join(sorted(missing)) or 'none'}")
    if inspect.isabstract(cls):
        raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
    taken = REGISTRY.get(name)
    if taken is not None and _qualname(taken) != _qualname(cls):
        raise ValueError(f"objective name {name!r} is already taken by {_qualname(taken)}")
    REGISTRY[name] = cls
    if _recording:
        _recording[-1].append(name)
    return cls


@contextlib.contextmanager
def _recorded() -> Iterator[list[str]]:
    """Collect the names registered inside the block (nested blocks keep their own)."""
    added: list[str] = []
    _recording.append(added)
    try:
        yield added
    finally:
        _recording.pop()


def unregister(name: str) -> None:
    """Forget objective ``name`` (tests and temporary registrations); unknown names are ignored."""
    REGISTRY.pop(name, None)
    for key, added in list(_loaded.items()):
        if name in added:
            del _loaded[key]


def _one_line(err: BaseException, origin: str | None) -> str:
    """``"NameError: name 'x' is not defined (plugin.py, line 5)"``: type, message, where."""
    text = " ".join(str(err).split()) or "no message"
    where = ""
    if origin and not isinstance(err, SyntaxError):  # a SyntaxError already says where
        tb: TracebackType | None = err.__traceback__
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


def _plugin_key(spec: str) -> str:
    return str(Path(spec).resolve()) if spec.endswith(".py") else spec


def load_plugin(spec: str) -> list[str]:
    """Import ``spec`` (a ``.py`` file path or a dotted module name) so its objectives register.

    Returns the names it registered. Loading the same plugin again is a no-op. Raises
    ``FileNotFoundError`` for a missing file and `PluginError` (an ``ImportError``) with a
    one-line message for a plugin that fails to import or registers no objective.
    """
    key = _plugin_key(spec)
    if key in _loaded or key in _loading:
        return list(_loaded.get(key, ()))
    if spec.endswith(".py") and not Path(key).is_file():
        raise FileNotFoundError(f"plugin file {spec} does not exist")
    origin = key if spec.endswith(".py") else None
    _loading.add(key)
    try:
        with _recorded() as added:
            if origin is None:
                found = importlib.util.find_spec(spec)
                if found is None:
                    raise ModuleNotFoundError(f"No module named {spec!r}")
                origin = found.origin
                module = importlib.import_module(spec)
            else:
                module = _import_file(Path(key))
    except Exception as err:  # noqa: BLE001 - any failure inside a plugin becomes one line
        for name in added:  # no half-loaded plugins
            REGISTRY.pop(name, None)
        raise PluginError(_one_line(err, origin)) from err
    finally:
        _loading.discard(key)
    if not added:  # already imported elsewhere: count what it defines
        prefix = module.__name__ + "."
        added = [n for n, c in REGISTRY.items() if (c.__module__ + ".").startswith(prefix)]
    if not added:
        raise PluginError("it registers no objective; decorate an Objective subclass with "
                          "@objectives.register (see docs/adding-an-objective.md)")
    _loaded[key] = tuple(added)
    listed = [s for s in os.environ.get(PLUGIN_ENV, "").split(os.pathsep) if s]
    if key not in listed:
        os.environ[PLUGIN_ENV] = os.pathsep.join([*listed, key])
    return added


def _load_external() -> None:
    """Load entry-point plugins (once) and any ``GRAMHARNESS_PLUGINS`` not loaded yet.

    A broken installed plugin must not take the built-ins down with it, so failures here
    are warnings (`PluginWarning`) and the plugin is skipped.
    """
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                with _recorded():  # not counted towards a plugin being loaded meanwhile
                    obj = ep.load()
                    if isinstance(obj, type) and REGISTRY.get(getattr(obj, "name", None)) is not obj:
                        register(obj)  # an entry point may name the class itself
            except Exception as err:  # noqa: BLE001
                warnings.warn(f"skipping objective entry point {ep.name} = {ep.value}: {_one_line(err, None)}",
                              PluginWarning, stacklevel=3)
    for spec in filter(None, os.environ.get(PLUGIN_ENV, "").split(os.pathsep)):
        key = _plugin_key(spec)
        if key not in _loaded and key not in _loading and spec not in _skipped:
            try:
                load_plugin(spec)
            except (PluginError, FileNotFoundError) as err:
                _skipped.add(spec)
                warnings.warn(f"skipping {PLUGIN_ENV} plugin {spec}: {err}", PluginWarning, stacklevel=3)


def names() -> list[str]:
    """Every registered objective name (built-ins first, then plugins, in registration order)."""
    _load_external()
    return list(REGISTRY)


def get(name: str) -> type[Objective]:
    """The objective class registered as ``name``; ``KeyError`` lists the known names."""
    _load_external()
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
