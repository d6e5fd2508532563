"""Every command-line option, defined once: its flags, type, default, help and check.

A command picks the options it uses by name (`add_options`), may give some a default of its
own, a note after the help, or say that it takes one value where the option takes a list
(``one``). Types turn the text into values while argparse parses (a malformed value is
argparse's one-line error); checks run right after parsing, in `Parser.parse_args`, and a
failed check is one line and exit code 2 through `Parser.error`. ``--plugin`` is loaded and
``--models`` resolved there too (``all`` becomes every objective). Nothing here imports torch:
``--help`` and bad input are answered at once.
"""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli import MAX_PARALLEL, Parser, UsageError, parse_value
from core import paper
from core.limits import LIMITS
from objectives import BUILTINS

FIGURE_FORMATS = ("png", "pdf", "svg")
DEFAULT_FIGURE_FORMATS = ("png", "pdf")
DEVICE = re.compile(r"cpu|cuda(:\d+)?")
SWEPT_BY_OPTION = {"noise_dim": "--noise-dims", "width": "--widths", "arch": "--arch", "model": "--models",
                   "dataset": "--dataset", "seed": "--seeds"}  # run fields that --grid leaves to their option


# --- types: text -> value (argparse reports a malformed value) -----------------------------------

def _typed(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` as an argparse type: its `UsageError` becomes argparse's one-line error."""
    def convert(text: str) -> Any:
        try:
            return fn(text)
        except UsageError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = fn.__name__
    return convert


def names(text: str) -> list[str]:
    """``"a, b,a"`` -> ["a", "b"]: the non-empty entries in order, without repeats."""
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def int_list(text: str) -> list[int]:
    """``"2,4,8"`` -> [2, 4, 8]."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"expects comma-separated integers, got {text!r}") from None


def key_value(text: str) -> tuple[str, Any]:
    """``"lr=1e-3"`` -> ("lr", 0.001); ``"sigmas=1,2"`` -> ("sigmas", (1, 2))."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"expects KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value.strip())


def key_values(text: str) -> tuple[str, list[Any]]:
    """``"df=2,4"`` -> ("df", [2, 4]): one axis of a sweep, without repeated values."""
    key, sep, values = text.partition("=")
    parsed = list(dict.fromkeys(parse_value(v.strip()) for v in values.split(",") if v.strip()))
    if not sep or not key.strip() or not parsed:
        raise UsageError(f"expects KEY=V1,V2,..., got {text!r}")
    return key.strip(), parsed


def figure_formats(text: str) -> tuple[str, ...]:
    """``"png,pdf"`` -> ("png", "pdf"); every entry must be a format the figures are written in."""
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in names(text)))
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown figure format {', '.join(unknown) or repr(text)}; "
                         f"choose from {', '.join(FIGURE_FORMATS)}")
    return formats


# --- checks: value -> what is wrong with it, or None ----------------------------------------------

def at_least(minimum: float, maximum: float | None = None) -> Callable[[Any], str | None]:
    """A number in ``minimum``..``maximum``, or a non-empty list of numbers >= ``minimum``."""
    bound = (f"in {minimum}..{maximum}" if maximum is not None else f"a number >= {minimum:g}"
             if isinstance(minimum, float) else "a positive integer" if minimum == 1 else f">= {minimum}")

    def check(value: Any) -> str | None:
        if isinstance(value, list):
            bad = [v for v in value if v < minimum]
            return "is empty" if not value else f"values must be at least {minimum}, got {bad[0]}" if bad else None
        if not (value >= minimum and (maximum is None or value <= maximum)):  # False for nan
            return f"must be {bound}, got {value:g}"
        return None
    return check


def at_most(field: str) -> Callable[[Any], str | None]:
    """A positive integer up to the run configuration's bound of ``field`` (`core.limits`),
    said as `engine.RunConfig` says it."""
    limit = LIMITS[field]

    def check(value: int) -> str | None:
        if value < 1:
            return f"must be a positive integer, got {value}"
        return f"must be at most {limit:,}, got {value:,}" if value > limit else None
    return check


PATH_MAX = 4_096  # bytes of a path on Linux, its terminating NUL included
OUT_ROOM = 512  # what commands add below --out (sweep, setting, data set, entry, cell, seed, temporary name)


def path_room(value: Path) -> str | None:
    """A folder whose absolute path leaves `OUT_ROOM` bytes for what is written below it."""
    length = len(os.fsencode(os.path.abspath(value)))
    if length > PATH_MAX - OUT_ROOM:
        return (f"is too long ({length:,} bytes; at most {PATH_MAX - OUT_ROOM:,}, so that what is written below it "
                f"fits the {PATH_MAX:,} bytes of a path)")
    return None


def not_empty(value: list[Any]) -> str | None:
    return "is empty" if not value else None


def devices(value: list[str]) -> str | None:
    """``cpu``, ``cuda`` or ``cuda:N``, not cpu among GPUs (whether they exist is the command's check)."""
    bad = [d for d in value if not DEVICE.fullmatch(d)]
    if bad:
        return f"has unknown device {bad[0]!r}; use cpu, cuda or cuda:N"
    if "cpu" in value and len(value) > 1:
        return "mixes cpu and cuda devices"
    return not_empty(value)


def grid_axes(value: list[tuple[str, list[Any]]]) -> str | None:
    """No axis that an option of its own sweeps."""
    for key, _ in value:
        if key in SWEPT_BY_OPTION:
            return f"cannot sweep {key}: use {SWEPT_BY_OPTION[key]}"
    return None


# --- resolving: options that depend on others (--models on --plugin) ------------------------------

def load_plugins(specs: list[str]) -> tuple[str, ...]:
    """Import every ``--plugin`` (it imports the objectives); returns them as keys the
    workers can load again."""
    if not specs:
        return ()
    import objectives
    for spec in specs:
        try:
            objectives.load_plugin(spec)
        except (ImportError, FileNotFoundError) as err:
            raise UsageError(f"cannot load plugin {spec!r}: {err}") from None
    return tuple(dict.fromkeys(objectives.registry.plugin_key(s) for s in specs))


def resolve_models(models: list[str], one: bool) -> list[str]:
    """``["gan", "gram"]`` checked against the registered objectives; ``["all"]`` -> every one."""
    from objectives import known_names
    known = known_names()
    models = known if models == ["all"] and not one else models
    unknown = [m for m in models if m not in known]
    if unknown:
        raise UsageError(f"unknown model {', '.join(unknown)}; choose from {', '.join(known)}"
                         + ("" if one else " or all"))
    return models


# --- the table ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One option: ``help`` may name ``{default}`` (the command's default, or ``shown``)."""

    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    shown: str = ""  # the default as the help says it, when it is not the value itself
    group: str = ""  # the help section it is listed under
    argparse: Mapping[str, Any] = field(default_factory=dict)  # action, choices, metavar, nargs

    @property
    def flag(self) -> str:
        return self.flags[0]


LONG = "long runs: checkpoints, metrics during training, live view"
PLACEMENT = "where the work runs"
FEATURES = "image features (FID, KID, precision and recall)"
INT_LIST, NAMES, PAIR, AXIS, FORMATS = (_typed(f) for f in (int_list, names, key_value, key_values, figure_formats))
OPTIONS: dict[str, Option] = {o.flag.lstrip("-").replace("-", "_"): o for o in [
    # what is trained
    Option(("--plugin",), "import a module or .py file that registers extra objectives (repeatable); see "
           "docs/adding-an-objective.md", argparse={"action": "append", "metavar": "MODULE_OR_FILE"}),
    Option(("--models", "--model"), "objective(s), a comma list or 'all', from " + ", ".join(BUILTINS)
           + " or one a --plugin registers (default {default})", NAMES, "gram",
           not_empty),
    Option(("--dataset", "--datasets"), "data set(s), a comma list, e.g. ring2d,ring3d,grid (toy) or mnist5k,"
           "cifar10,folder:PATH (images) (default {default})", NAMES, "ring2d", not_empty),
    Option(("--config",), "an experiment file (TOML, see docs/experiments.md): its values replace the preset's, "
           "options given here replace the file's", Path, argparse={"metavar": "FILE.toml"}),
    Option(("--preset",), "the shipped experiment file experiments/<command>-<preset>.toml, under --config and "
           "the options given here (default {default}): {choices}", default="full"),
    Option(("--from",), "train exactly the run a record describes (its complete configuration), e.g. "
           "results/stability/.../seed0/record.json", Path, argparse={"metavar": "RECORD"}),
    Option(("--arch",), "network architecture(s), a comma list: mlp, dcgan, weaker (default {default})", NAMES,
           check=not_empty, shown="mlp"),
    Option(("--noise-dims", "--noise-dim"), "generator noise dimension(s), a comma list (default {default})",
           INT_LIST, check=at_least(1), shown="4"),
    Option(("--widths", "--width"), "generator width(s), a comma list: hidden units, or the widest conv layer's "
           "channels (default {default})", INT_LIST, check=at_least(1), shown="100"),
    Option(("--depth",), "generator hidden layers (default {default})", int, check=at_least(1), shown="2"),
    Option(("--grid",), "sweep any run field or hyperparameter too, e.g. df=2,4,8,16 (repeatable)",
           AXIS, check=grid_axes, argparse={"action": "append", "metavar": "KEY=V1,V2,..."}),
    Option(("--seeds", "--seed"), "seed(s) for data, initialisation, noise and batches, a comma list "
           "(default {default})", INT_LIST, "0", at_least(0)),
    Option(("--steps",), "generator steps per run: the training length (default {default})", int,
           check=at_least(1), shown=f"{paper.RING_STEPS:,}, the paper's"),
    Option(("--batch",), "batch size, real and generated (default {default})", int, check=at_least(1),
           shown=f"{paper.RING_BATCH}, the paper's"),
    Option(("--samples",), "samples drawn and scored per run (default {default})", int, check=at_most("n_samples"),
           shown=f"{paper.SAMPLES:,}"),
    Option(("--noise",), "noise distribution (default {default})", shown="normal",
           argparse={"choices": ["normal", "uniform"]}),
    Option(("--ema",), "also keep an exponential moving average of each run's generator weights with this decay, "
           "e.g. 0.999, scored and stored beside the raw generator (samples_ema.npy, metrics ema_*; default "
           "{default} = off)", float, 0.0, lambda v: None if 0 <= v < 1 else f"must be in [0, 1), got {v}",
           argparse={"metavar": "DECAY"}),
    Option(("--set",), "override a hyperparameter of every objective that has it, e.g. lr=5e-4 (checked against "
           "its default's type and range; repeatable)", PAIR,
           argparse={"action": "append", "metavar": "KEY=VALUE"}),
    Option(("--snapshot-steps",), "comma list of steps (0 = before training) at which samples and projected "
           "points are kept (snapshots.npz)", INT_LIST, check=at_least(0)),
    Option(("--max-stack",), "most runs trained as one batched model (default {default}). Part of the experiment: "
           "a stacked run agrees with the same run alone only up to float rounding, so keep it fixed to "
           "reproduce numbers bit for bit (--jobs never changes them); each record names its stack", int,
           shown="16 on CPU; on GPUs a whole grid of one objective and data set"),
    # where it runs
    Option(("--jobs",), "parallel CPU workers (default {default}; use one per core)", int, 1,
           at_least(1, MAX_PARALLEL), group=PLACEMENT),
    Option(("--threads",), "torch CPU threads per worker (default {default}, fastest for these small networks)",
           int, 1, at_least(1, MAX_PARALLEL), group=PLACEMENT),
    Option(("--devices", "--device"), "cpu or cuda devices, a comma list like cuda:0,cuda:1 (default {default})",
           NAMES, "cpu", devices, group=PLACEMENT),
    Option(("--jobs-per-device",), "worker processes per GPU (default {default})", int,
           check=at_least(1, MAX_PARALLEL), group=PLACEMENT,
           shown="1: it trains one stack after another, each stack a whole grid; processes sharing a GPU only "
                 "time-slice it"),
    Option(("--backend",), "loky (local worker processes, default), dask (a Dask cluster; needs --scheduler) or "
           "slurm (Slurm jobs through submitit, see docs/clusters.md)", default="loky", group=PLACEMENT,
           argparse={"choices": ["loky", "dask", "slurm"]}),
    Option(("--scheduler",), "Dask scheduler address for --backend dask, e.g. tcp://host:8786", group=PLACEMENT),
    Option(("--slurm-time",), "--backend slurm: minutes per job (default {default})", int, 240,
           at_least(1, 30 * 24 * 60), group=PLACEMENT),
    Option(("--slurm-gpus",), "--backend slurm: GPUs per job (default {default}: CPU)", int, 0, at_least(0, 64),
           group=PLACEMENT),
    Option(("--slurm-partition",), "--backend slurm: partition (default: the cluster's)", group=PLACEMENT),
    Option(("--slurm-logs",), "--backend slurm: job files and logs (default OUT/slurm-logs)", Path, group=PLACEMENT),
    Option(("--stacks-per-job",), "--backend slurm: stacks per job (default {default})", int, 1,
           at_least(1, MAX_PARALLEL), group=PLACEMENT),
    Option(("--slurm-cluster",), "--backend slurm: slurm (default) or local (submitit's jobs on this machine, a "
           "try-out)", default="slurm", group=PLACEMENT, argparse={"choices": ["slurm", "local"]}),
    # long runs
    Option(("--checkpoint-minutes",), "write each stack's full training state every this many minutes of "
           "training (default {default}; 0 = never); rerunning the same command resumes from it", float, 10.0,
           at_least(0.0), group=LONG),
    Option(("--checkpoint-steps",), "also checkpoint every this many generator steps (default {default} = never)",
           int, 0, at_least(0), group=LONG),
    Option(("--eval-every",), "score a fixed-noise sample every this many steps, at step 0 and at the end; stored "
           "as metrics_over_steps.csv in each record (default {default} = never)", int, 0, at_least(0), group=LONG),
    Option(("--eval-samples",), "samples per run in each evaluation during training (default {default})", int,
           2_000, at_most("n_samples"), group=LONG),
    Option(("--tensorboard",), "write TensorBoard event files per run (diagnostics, metrics, sample figures); "
           "kept in each record's tensorboard/ folder (watch: tensorboard --logdir OUT)", group=LONG,
           argparse={"action": "store_true"}),
    Option(("--log-every",), "with --tensorboard: steps per logged diagnostic mean (default {default})", int, 50,
           at_least(1), group=LONG),
    Option(("--images-every",), "with --tensorboard: steps between sample figures (default {default})", int, 500,
           at_least(1), group=LONG),
    # images: data and features
    Option(("--data-root",), "folder holding the image data sets (default $GRAMHARNESS_DATA_ROOT or ./datasets)"),
    Option(("--download",), "download missing torchvision data sets into --data-root",
           argparse={"action": "store_true"}),
    Option(("--features",), "feature extractor: auto (default: the data set's own, offline for mnist5k), offline "
           "(a CNN trained here on the labelled data) or inception (torch-fidelity's Inception-v3)",
           default="auto", group=FEATURES, argparse={"choices": ["auto", "offline", "inception"]}),
    Option(("--fid-weights",), "local Inception-v3 weights for torch-fidelity "
           "(weights-inception-2015-12-05-6726825d.pth); without it they are downloaded", group=FEATURES,
           argparse={"metavar": "PATH"}),
    Option(("--extractor-epochs",), "training epochs of the offline extractor (default {default})", int,
           check=at_least(1), group=FEATURES, shown="its configuration's, metrics.images.OfflineConfig"),
    Option(("--kid-subset-size",), "KID subset size (default {default})", int, 1000, at_least(1), group=FEATURES),
    Option(("--cache-dir",), "feature extractor and real-feature cache (default {default})", Path, group=FEATURES),
    # output
    Option(("results",), "results root, a sweep's directory, or one setting's directory", Path),
    Option(("--out",), "where the output goes (default {default})", Path, check=path_room),
    Option(("--force",), "train again what already has a record", argparse={"action": "store_true"}),
    Option(("--no-figures",), "tables only: skip the figures", argparse={"action": "store_true"}),
    Option(("--format",), "figure formats, a comma list of " + ", ".join(FIGURE_FORMATS) + " (default {default}: "
           "PNG to look at, PDF (vector) for a paper)", FORMATS, ",".join(DEFAULT_FIGURE_FORMATS)),
    Option(("--publish",), "also write the report into this folder for a repository: report.md and only the "
           "PNG figures it shows, each as a 256-colour PNG (about a third of the size)", Path, check=path_room),
    # the bench
    Option(("--stack",), "comma list of runs trained together (default {default})", INT_LIST, "1,4",
           at_least(1)),
    Option(("--timed-steps",), "timed generator steps per repeat (default {default})", int, 200, at_least(1)),
    Option(("--warmup",), "untimed steps first (default {default})", int, 30, at_least(0)),
    Option(("--repeats",), "timed repeats; the median is reported (default {default})", int, 3, at_least(1)),
    Option(("--naive",), "path of the naive yardstick script, or 'none' (default: ../shared/bench/naive_ring.py "
           "beside the repository, when it exists)", default="default"),
    Option(("--image",), "also time the image setting (--arch at batch 64)", argparse={"action": "store_true"}),
    Option(("--image-dataset",), "data set for --image (default {default})", default="mnist5k"),
    # the figures of one run or a few
    Option(("--smooth",), "moving-average window in steps (default {default}; 1 = raw)", int, 50, at_least(1)),
    Option(("--logx",), "log-scale step axis (to see the first iterations)", argparse={"action": "store_true"}),
    Option(("--cell",), "for a sweep directory: draw only this cell (repeatable)",
           argparse={"action": "append", "metavar": "CELL"}),
]}


def add_options(parser: Parser, *picked: str, defaults: Mapping[str, Any] | None = None,
                shown: Mapping[str, str] | None = None, notes: Mapping[str, str] | None = None,
                one: Collection[str] = (), choices: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Add the options ``picked`` (keys of `OPTIONS`, in help order) to ``parser``.

    This command's ``defaults`` replace an option's (a string is parsed like the command
    line's), ``shown`` says an unset default in the help instead of the option's ``shown``,
    ``notes`` end an option's help with a sentence of this command's, ``one`` names list
    options that take a single value here, and ``choices`` gives an option its allowed
    values, each with a description for the help."""
    defaults, shown, notes, choices = dict(defaults or {}), dict(shown or {}), dict(notes or {}), dict(choices or {})
    groups: dict[str, Any] = {}
    for name in picked:
        option = OPTIONS[name]
        default = defaults.get(name, option.default)
        said = shown.get(name, option.shown) if default is None else default if isinstance(default, str) else \
            f"{default:g}" if isinstance(default, float) else str(default)
        allowed = choices.get(name, {})
        text = option.help.format(default=said or "none", choices="; ".join(f"{k}: {v}" for k, v in allowed.items()))
        note = "; ".join(([notes[name]] if name in notes else []) + (["one value here"] if name in one else []))
        kwargs = {**option.argparse, "help": text + (f"; {note}" if note else "")}
        if allowed:
            kwargs["choices"] = list(allowed)
        if option.type is not None:
            kwargs["type"] = option.type
        if option.group and option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        target = groups.get(option.group, parser)
        if not option.flag.startswith("-"):  # a positional argument
            target.add_argument(option.flag, **kwargs)
            continue
        if option.argparse.get("action") != "store_true":
            kwargs["default"] = default
        target.add_argument(*option.flags, dest=name, **kwargs)
        parser.picked[name] = name in one


def finish(args: argparse.Namespace, picked: Mapping[str, bool]) -> None:
    """After parsing: check every picked option, take the single value of those a command
    takes one of, load ``--plugin`` and resolve ``--models``; bad input raises `UsageError`."""
    for name, one in picked.items():
        option, value = OPTIONS[name], getattr(args, name)
        if value is None and option.argparse.get("action") == "append":
            value = []
        problem = option.check(value) if value is not None and option.check is not None else None
        if problem:
            raise UsageError(f"{option.flag} {problem}")
        if one and isinstance(value, list):
            if len(value) != 1:
                raise UsageError(f"{option.flag} takes one value here, got {','.join(map(str, value))!r}")
            value = value[0]
        setattr(args, name, value)
    if "plugin" in picked:
        args.plugin = load_plugins(args.plugin)
    if "models" in picked:
        one = picked["models"]
        models = resolve_models([args.models] if one else args.models, one)
        args.models = models[0] if one else models


# --- experiment files: a TOML mapping through the same types and checks -------------------------

LIST_OF = {INT_LIST: (int,), NAMES: (str,), FORMATS: (str,)}  # list types -> the TOML type of an entry
SCALAR = {int: ((int,), "an integer"), float: ((int, float), "a number")}
WORDS = {int: "an integer", str: "a string"}


def _entries(value: Any, kinds: tuple[type, ...], listable: bool) -> list[Any] | None:
    """``value`` as a list of entries of ``kinds`` (a list, or one entry where ``listable``); None when it is not."""
    items = value if listable and isinstance(value, list) else [value]
    ok = all(isinstance(v, kinds) and (bool in kinds or not isinstance(v, bool)) for v in items)
    return items if ok else None


def _value_text(value: Any, axis: bool) -> str:
    """A TOML value of a ``set`` or ``grid`` table as `key_value` or `key_values` reads it back:
    Python literals, a list as a tuple (``set``) or as the axis's comma list (``grid``)."""
    if axis:
        return ",".join(map(repr, value if isinstance(value, list) else [value]))
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def _file_text(value: Any, option: Option) -> str | list[str] | bool:
    """A TOML value as the text the command line would give the option (a list of texts for
    a repeatable option, a bool for a switch); `UsageError` naming the type when it does not fit."""
    action = option.argparse.get("action")
    if action == "store_true":
        if isinstance(value, bool):
            return value
        raise UsageError("must be true or false")
    if option.type in (PAIR, AXIS):
        if not isinstance(value, dict):
            raise UsageError("must be a table of KEY = " + ("VALUE" if option.type is PAIR else "[V1, V2, ...]"))
        return [f"{k}={_value_text(v, option.type is AXIS)}" for k, v in value.items()]
    if option.type in LIST_OF:
        kinds = LIST_OF[option.type]
        items = _entries(value, kinds, True)
        if items is None:
            raise UsageError(f"must be {WORDS[kinds[0]]} or a list of them")
        return ",".join(map(str, items))
    kinds, words = SCALAR.get(option.type, ((str,), "a string"))
    items = _entries(value, kinds, action == "append")
    if items is None:
        raise UsageError(f"must be {words}" + (" or a list of them" if action == "append" else ""))
    return [str(v) for v in items] if action == "append" else str(items[0])


def apply_config(parser: Parser, values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The values of an experiment file (option name -> TOML value) as ``parser`` would parse
    and check them on the command line: each turned into the option's text, through its type,
    its choices and its check. Any problem is a `UsageError` of one line naming ``source`` and
    the key: a key that is not an option of this command, a value of the wrong type, a value
    out of range."""
    from difflib import get_close_matches
    actions = {a.dest: a for a in parser._actions}
    usable = [k for k in parser.picked if k not in ("config", "preset", "from")]
    typed = {}
    for key, value in values.items():
        if key not in usable:
            near = get_close_matches(key, usable, 1)
            raise UsageError(f"{source}: unknown key {key!r} for {parser.prog}"
                             + (f"; did you mean {near[0]}?" if near else ""))
        option, action = OPTIONS[key], actions[key]
        try:
            text = _file_text(value, option)
            convert = action.type or str
            result = [convert(t) for t in text] if isinstance(text, list) else \
                text if isinstance(text, bool) else convert(text)
        except UsageError as err:
            raise UsageError(f"{source}: {key} {err}, got {value!r}") from None
        except (argparse.ArgumentTypeError, ValueError, TypeError) as err:
            raise UsageError(f"{source}: {key}: {err}") from None
        if action.choices is not None and result not in action.choices:
            raise UsageError(f"{source}: {key} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
        problem = option.check(result) if option.check is not None else None
        if problem:
            raise UsageError(f"{source}: {key} {problem}")
        typed[key] = result
    return typed


class _Unset(list):
    """What `given_options` puts in every option before parsing (a list: repeatable options append to it)."""


def given_options(parser: Parser, argv: Sequence[str]) -> dict[str, Any]:
    """The options of `cli.options.OPTIONS` that ``argv`` gives, with their values typed but not
    yet checked (`finish` checks them); argparse's one-line error for malformed text."""
    unset = _Unset()
    ns = argparse.ArgumentParser.parse_known_args(parser, list(argv), argparse.Namespace(
        **dict.fromkeys(parser.picked, unset)))[0]
    return {k: list(v) if isinstance(v, _Unset) else v for k, v in vars(ns).items()
            if k in parser.picked and v is not unset}
