"""The one command-line vocabulary of every entry point (sweeps and analysis commands):
one-line errors with exit code 2, typed value lists, objectives and plugins, devices, and
the options that mean the same in every command (``--models``, ``--out``, ``--plugin``).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, NoReturn

import torch

import objectives


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) and exit code 2, and
    which never guesses an abbreviated option."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_value(text: str) -> Any:
    """``"1e-3"`` -> 0.001, ``"1,2,4"`` -> (1, 2, 4), ``"adam"`` -> ``"adam"``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-3", "sigmas=1,2"]`` -> ``{"lr": 0.001, "sigmas": (1, 2)}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_names(text: str, option: str) -> list[str]:
    """``"a, b,a"`` -> ["a", "b"]: the non-empty entries in order, without repeats."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise UsageError(f"{option} is empty")
    return names


def parse_int_list(text: str, name: str, minimum: int = 1) -> list[int]:
    """``"2,4,8"`` -> [2, 4, 8]; every entry must be an integer >= ``minimum``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{name} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise UsageError(f"{name} is empty")
    if any(v < minimum for v in values):
        raise UsageError(f"{name} values must be at least {minimum}, got {text!r}")
    return values


def check_device(name: str) -> torch.device:
    """A usable torch device, or `UsageError` naming what is available."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"device {name} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= count:
            raise UsageError(f"device {name} does not exist (this machine has {count} CUDA device(s))")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    return device


def add_plugin_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="import a module or .py file that registers extra objectives "
                             "(repeatable); see docs/adding-an-objective.md")


def load_plugins(specs: list[str]) -> tuple[str, ...]:
    """Import every ``--plugin``; returns them as keys the workers can load again."""
    for spec in specs:
        try:
            objectives.load_plugin(spec)
        except (ImportError, FileNotFoundError) as err:
            raise UsageError(f"cannot load plugin {spec!r}: {err}") from None
    return tuple(dict.fromkeys(objectives.registry.plugin_key(s) for s in specs))


def add_models_arg(parser: argparse.ArgumentParser, default: str, single: bool = False) -> None:
    """``--models`` (alias ``--model``): objectives by name, a comma list, or ``all``."""
    what = "objective" if single else "objective(s): a comma list or 'all'"
    parser.add_argument("--models", "--model", dest="models", default=default,
                        help=f"{what}, from {', '.join(objectives.names())} or one a --plugin registers "
                             f"(default {default})")


def parse_models(text: str, single: bool = False) -> list[str]:
    """``"gan,gram,gan"`` -> ["gan", "gram"]; ``"all"`` -> every registered objective."""
    known = objectives.names()
    models = known if text == "all" and not single else parse_names(text, "--models")
    unknown = [m for m in models if m not in known]
    if unknown:
        raise UsageError(f"unknown model {', '.join(unknown)}; choose from {', '.join(known)}"
                         + ("" if single else " or all"))
    if single and len(models) != 1:
        raise UsageError(f"--models takes one objective here, got {text!r}")
    return models


def add_out_arg(parser: argparse.ArgumentParser, default: Path | None, what: str) -> None:
    shown = f" (default {default}/)" if default is not None else ""
    parser.add_argument("--out", type=Path, default=default, help=f"{what}{shown}")

