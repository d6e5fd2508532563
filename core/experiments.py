"""Experiment files: one TOML file per experiment, read with the standard library (`tomllib`).

An experiment file names its command and, under their option names (`cli.options.OPTIONS`),
the values of that command's options: ``models``, ``dataset``, ``noise_dims``, ``widths``,
``grid``, ``seeds``, ``steps``, ``set``, ... (docs/experiments.md). Three keys are the
file's own: ``command`` (``"stability"`` or ``"fid"``), ``about`` (one line for the help) and
``base`` (another experiment file, relative to this one, whose values this file's replace).
The harness ships its experiments in ``experiments/`` at the repository root (`folder`); a
command's presets are the files ``<command>-<preset>.toml`` there. What a file's values mean
and whether they are valid is the command line's business (`cli.options.apply_config`);
here files are found, read and merged with their bases, and the experiment a sweep ran is
saved beside its records (`save_resolved`). Nothing here imports torch.
"""
from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.files import config_key, write_text

ENV = "GRAMHARNESS_EXPERIMENTS"  # a folder of experiment files to use instead of the shipped one
META = ("command", "about", "base")  # a file's own keys; every other key is an option
RESOLVED_PREFIX = "experiment-"  # <setting>/experiment-<name>-<hash>.json: what a sweep ran (`save_resolved`)


class ExperimentError(ValueError):
    """An experiment file that cannot be read or does not fit; ``str(err)`` is one line."""


@dataclass(frozen=True)
class Experiment:
    """One experiment file with its bases merged: ``values`` maps option names to TOML values."""

    path: Path
    command: str
    about: str
    values: dict[str, Any]
    files: tuple[Path, ...]  # the file, then its base, its base's base, ...

    @property
    def name(self) -> str:
        return self.path.stem


def folder() -> Path:
    """The shipped experiment files: ``$GRAMHARNESS_EXPERIMENTS`` when set, else ``experiments/``
    beside the packages (a checkout or an editable install), else where a wheel installs them
    (``<prefix>/share/gramharness/experiments``, setup.cfg's data files)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    beside = Path(__file__).resolve().parents[1] / "experiments"
    return beside if beside.is_dir() else Path(sys.prefix) / "share" / "gramharness" / "experiments"


def load(path: Path, _seen: tuple[Path, ...] = ()) -> Experiment:
    """The experiment file at ``path`` merged with its ``base`` chain (a file's values replace
    its base's); `ExperimentError` when a file is missing, is not TOML, or the chain loops or
    names two commands."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ExperimentError(f"{path}: its base chain loops back to {path.name}")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ExperimentError(f"experiment file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ExperimentError(f"{path}: not a readable TOML file: {err}") from None
    for key in META:
        if key in raw and not isinstance(raw[key], str):
            raise ExperimentError(f"{path}: {key} must be a string, got {raw[key]!r}")
    values = {k: v for k, v in raw.items() if k not in META}
    command, files = raw.get("command", ""), (path,)
    if "base" in raw:
        base = load(path.parent / raw["base"], (*_seen, path.resolve()))
        if command and command != base.command:
            raise ExperimentError(f"{path}: command {command!r} differs from its base {base.path.name}'s "
                                  f"{base.command!r}")
        command, values, files = base.command, {**base.values, **values}, (path, *base.files)
    if not command:
        raise ExperimentError(f"{path}: names no command (e.g. command = \"stability\")")
    return Experiment(path, command, raw.get("about", ""), values, files)


def shipped(name: str) -> Experiment:
    """The shipped experiment ``name`` (``"paper-ring"`` -> ``experiments/paper-ring.toml``)."""
    return load(folder() / f"{name}.toml")


def presets(command: str) -> dict[str, Experiment]:
    """A command's presets: preset name -> its file ``<command>-<name>.toml`` in `folder`."""
    prefix = f"{command}-"
    return {p.stem.removeprefix(prefix): load(p) for p in sorted(folder().glob(f"{prefix}*.toml"))}


def save_resolved(setting: Path, resolved: Mapping[str, Any]) -> Path:
    """Write what a sweep ran (its files, overrides and every option's value: plain data) as
    ``<setting>/experiment-<name>-<hash>.json``, atomically; the same experiment run again
    writes the same file."""
    text = json.dumps(resolved, indent=2, sort_keys=True, default=str) + "\n"
    name = f"{RESOLVED_PREFIX}{resolved.get('name', 'command-line')}-{config_key(json.loads(text), 6)}.json"
    return write_text(Path(setting) / name, text)


def resolved_in(setting: Path) -> list[dict[str, Any]]:
    """The experiments saved in a setting's folder (`save_resolved`), oldest name first;
    unreadable ones are left out."""
    found = []
    for path in sorted(Path(setting).glob(f"{RESOLVED_PREFIX}*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found
