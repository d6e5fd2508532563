"""The one command-line vocabulary of every entry point (sweeps and analysis commands):
one-line errors with exit code 2, typed value lists, objectives and plugins, devices, the
options that mean the same in every command (``--models``, ``--out``, ``--plugin``), and
how a command ends when it is stopped (Ctrl-C, SIGTERM) or the disk is full (`clean_exit`).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import torch

import data
import objectives
from data.images import DATA_ROOT_ENV, DatasetMissing


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


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) arrived: unwinds the stack like Ctrl-C, so the
    ``finally`` blocks on the way out stop worker processes and remove temporary files."""

    @property
    def signum(self) -> int:
        return self.args[0] if self.args else signal.SIGINT


def _stop(signum: int, frame: Any) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the clean-up on the way out is not interrupted
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the machine's problem, not a bug to trace back


@contextlib.contextmanager
def clean_exit(prog: str, stopped_note: str = "") -> Iterator[None]:
    """Run a command's work so that it ends with ONE line on stderr, never a traceback, when
    it is stopped or the disk fails it: Ctrl-C or SIGTERM (from ``kill``, ``timeout``, a batch
    scheduler) exit with 128 + the signal (130, 143) after the way out has stopped the
    workers; a full or read-only disk exits with 1. ``stopped_note`` tells the user what is
    kept (e.g. how to resume)."""
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Stopped) else signal.SIGINT
        print(f"{prog}: stopped by {signal.Signals(signum).name}{stopped_note}", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(f"{prog}: error: {err.strerror or err}{where}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


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


MAX_PARALLEL = 1024  # --jobs, --threads, ...: more is a typo, not a machine


def check_counts(**counts: int) -> None:
    """`UsageError` unless every count (``jobs=2, threads=1``) lies in 1..`MAX_PARALLEL`."""
    for name, value in counts.items():
        if not 1 <= value <= MAX_PARALLEL:
            raise UsageError(f"--{name.replace('_', '-')} must be in 1..{MAX_PARALLEL}, got {value}")


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



def add_data_args(parser: argparse.ArgumentParser) -> None:
    """``--data-root`` and ``--download``: where image data sets are, and whether to fetch them."""
    parser.add_argument("--data-root", help=f"folder holding the image data sets (default ${DATA_ROOT_ENV} or "
                                            "./datasets)")
    parser.add_argument("--download", action="store_true",
                        help="download missing torchvision data sets into --data-root")


def add_feature_args(parser: argparse.ArgumentParser, cache_default: str) -> None:
    """How images are scored (`metrics.images`), the same in `sweeps.fid` and `sweeps.rescore`:
    ``--features``, ``--fid-weights``, ``--extractor-epochs``, ``--kid-subset-size``, ``--cache-dir``."""
    from metrics.images import OfflineConfig
    parser.add_argument("--features", choices=["auto", "offline", "inception"], default="auto",
                        help="feature extractor: auto (default: the data set's own, offline for mnist5k), offline "
                             "(a CNN trained here on the labelled data) or inception (torch-fidelity's Inception-v3)")
    parser.add_argument("--fid-weights", metavar="PATH",
                        help="local Inception-v3 weights for torch-fidelity "
                             "(weights-inception-2015-12-05-6726825d.pth); without it they are downloaded")
    parser.add_argument("--extractor-epochs", type=int, default=OfflineConfig.epochs,
                        help=f"training epochs of the offline extractor (default {OfflineConfig.epochs})")
    parser.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (default 1000)")
    parser.add_argument("--cache-dir", type=Path,
                        help=f"feature extractor and real-feature cache (default {cache_default})")


def check_feature_args(args: argparse.Namespace) -> None:
    """`UsageError` unless the options of `add_feature_args` are in range."""
    if min(args.kid_subset_size, args.extractor_epochs) < 1:
        raise UsageError("--kid-subset-size and --extractor-epochs must be at least 1")


def scoring_from_args(args: argparse.Namespace, dataset: Any, name: str, cache: Path) -> Any:
    """The `metrics.images.ImageScoring` of ``dataset`` (directory name ``name``) that the
    options of `add_feature_args` ask for; an unusable extractor is a `UsageError`."""
    from metrics.images import FeatureError, OfflineConfig, dataset_scoring
    try:
        return dataset_scoring(dataset, name, args.features, args.fid_weights, cache,
                               OfflineConfig(epochs=args.extractor_epochs), args.kid_subset_size,
                               log=lambda msg: print(msg, file=sys.stderr))
    except FeatureError as err:
        raise UsageError(str(err)) from None


def open_dataset(name: str, root: str | None = None, download: bool = False) -> Any:
    """The data set ``name``, loaded now so a missing one fails before any work
    (`UsageError` naming the files expected and how to get them). ``root`` becomes the data
    root of the worker processes too (they inherit ``$GRAMHARNESS_DATA_ROOT``)."""
    if root:
        os.environ[DATA_ROOT_ENV] = str(Path(root).expanduser().resolve())
    try:
        dataset = data.get(name)
        if dataset.kind == "image":
            dataset = data.get(name, root=root, download=download)
        dataset.train_set(0)
    except (DatasetMissing, KeyError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    return dataset
