"""Resolving an objective's hyperparameters: its defaults for the data kind, updated by
checked overrides.

Every override is checked against its default before anything trains: the same type (an
int where the default is an int; any real number where it is a float, stored as float; a
tuple of numbers where it is a tuple) and, for the names every objective shares, the range
that makes sense (`RANGES`: learning rates and bandwidths positive, betas in [0, 1), step
counts and dimensions at least 1, ...). Checked values are normalised (``1`` for a float
default becomes ``1.0``), so equal settings always give equal records.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]
GRAM_FORMS = ("julia", "gramflow")  # GRAM-net's step: the authors' Julia or TensorFlow code (objectives/gram.py)


def _positive(v: Any) -> bool:
    return all(x > 0 for x in (v if isinstance(v, tuple) else (v,)))


RANGES: dict[str, tuple[Check, str]] = {
    "lr": (_positive, "a positive number"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "rmsprop_decay": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "eps": (_positive, "a positive number"),
    "clip": (_positive, "a positive number"),
    "sigmas": (_positive, "a list of positive bandwidths"),
    "df": (lambda v: v >= 1, "at least 1"),
    "n_critic": (lambda v: v >= 1, "at least 1"),
    "optimizer": (lambda v: v in ("adam", "rmsprop"), "adam or rmsprop"),
    "form": (lambda v: v in GRAM_FORMS, " or ".join(GRAM_FORMS)),
}
NON_NEGATIVE_PREFIX = "lambda_"  # penalty weights: 0 switches a term off


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_value(key: str, value: Any, default: Any) -> Any:
    """``value`` for hyperparameter ``key`` normalised to the type of ``default``; raises
    ``ValueError`` with a one-line message when the type or range is wrong."""
    def bad(expected: str) -> ValueError:
        return ValueError(f"--set {key}={value!r}: {key} must be {expected}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("True or False")
    elif isinstance(default, numbers.Integral):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise bad("an integer")
        value = int(value)
    elif isinstance(default, numbers.Real):
        if not _is_real(value) or not math.isfinite(value):
            raise bad("a finite number")
        value = float(value)
    elif isinstance(default, tuple):
        items = value if isinstance(value, (tuple, list)) else (value,)
        if not items or not all(_is_real(v) and math.isfinite(v) for v in items):
            raise bad("a comma list of finite numbers")
        value = tuple(float(v) for v in items)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a word")
    rule = RANGES.get(key)
    if rule is None and key.startswith(NON_NEGATIVE_PREFIX):
        rule = (lambda v: v >= 0, "at least 0")
    if rule is not None and not rule[0](value):
        raise bad(rule[1])
    return value


def resolve(objective: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``defaults`` updated by checked ``overrides``; unknown keys are rejected so that a
    typo in ``--set`` cannot silently do nothing."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"{objective} has no hyperparameter {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(defaults))}")
    return {k: check_value(k, overrides[k], v) if k in overrides else v for k, v in defaults.items()}
