"""Every metric the harness computes, described once: tables, heatmaps, curves, captions,
progress lines and records all read these entries, so a metric looks the same everywhere
(one scale, one format, one best end) and adding one is one `register` call here.

Each `Metric` says what it is called (``label`` for axes and colour bars, ``short`` for
table headers, ``about`` for captions), which end is best, its scale and number format,
its fixed range given the data where it has one (a function of the data set's number of
modes: heatmap colours never depend on the data), whether progress lines show it, which
data it applies to (``toy`` mixtures, ``image`` data, or every run) and what its values
are (reals, counts, yes/no flags, or categories such as a failure's type). Entries are
registered by key as torch-fidelity registers its extractors (`register` refuses a key
twice); their order is the order of table columns, figure panels and the report's heatmaps.

A metric whose ``best`` is None (the data set's number of modes, a metric's spread over
subsets, wall time) is context, not quality: recorded and described, never coloured,
tabulated or ranked. Definitions of the ring metrics and the success rule are in
`metrics.ring`, of the image metrics in `metrics.images`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metrics.success import COVER_SHARE, FAILURES, HQ_RADIUS, MMD_SIGMAS, SUCCESS_RULE, SUCCESS_SPREAD

Best = Literal["high", "low", "centre"]  # centre: the middle of the fixed range (on the metric's scale)
Limits = Callable[[int], tuple[float, float]]  # the fixed range given the data set's number of modes
Values = Literal["real", "count", "flag", "category"]  # a count's range ends at the number of modes; a flag is
# yes/no; a category is one of a few names (context only: never averaged)


@dataclass(frozen=True)
class Metric:
    """How one metric is named, judged, scaled and written wherever it appears."""

    key: str  # its name in a record's metrics
    label: str  # long name: axes, colour bars, legends (matplotlib mathtext allowed)
    short: str  # a table column's header (a flag's: an adjective, e.g. "successful")
    about: str  # what it measures, one sentence starting with a capital: captions
    best: Best | None  # which end is best; None: context, not quality
    scale: Literal["linear", "log"] = "linear"
    fmt: str = ".2f"  # number format in tables and figure annotations (see `analysis.tables.numbers`)
    limits: Limits | None = None  # fixed range, where one exists; a log scale draws lower values at its floor
    band: tuple[float, float] | None = None  # the range the success rule accepts, marked on colour bars
    ticks: tuple[float, ...] = ()  # colour-bar ticks, where the default ones would not say enough
    progress: bool = False  # shown in a finished run's progress line
    data: Literal["toy", "image"] | None = None  # the data it applies to; None: every run
    values: Values = "real"
    factors: Mapping[str, float] = field(default_factory=dict)  # printed x factor per features-key prefix

    @property
    def log(self) -> bool:
        return self.scale == "log"

    @property
    def mean_label(self) -> str:
        """The label of a mean over runs (a flag's mean is the rate of runs that have it)."""
        return f"{self.label} rate" if self.values == "flag" else self.label

    @property
    def better(self) -> str:
        """Which end is best, in words: ``lower is better``."""
        return {"high": "higher is better", "low": "lower is better", "centre": "nearer the centre is better",
                None: "not a measure of quality"}[self.best]

    def best_value(self, n_modes: int) -> float:
        """The best value within the fixed range (the metric must have one and a best end)."""
        lo, hi = self.limits(n_modes)
        return {"high": hi, "low": lo, "centre": math.sqrt(lo * hi) if self.log else (lo + hi) / 2}[self.best]

    def factor(self, features_key: str) -> float:
        """What values scored with these features are multiplied by when printed (KID x 10^3
        for Inception-v3 features, the literature's unit); 1 otherwise."""
        return next((f for prefix, f in self.factors.items() if str(features_key).startswith(prefix)), 1.0)

    def text(self, value: Any, n_modes: int | None = None) -> str:
        """``value`` in a progress line: a flag as its short name or ``not`` it, a count out
        of its range's end (``8/8``), a number to three significant digits."""
        if self.values == "flag":
            return self.short if value else f"not {self.short}"
        if self.values == "category":
            return str(value)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return f"{self.short} n/a"
        if self.values == "count" and self.limits and n_modes:
            return f"{self.short} {value:g}/{self.limits(n_modes)[1]:g}"
        return f"{self.short} {value:.3g}"

    def describe(self, n_modes: int | None = None) -> dict[str, Any]:
        """The description as plain data, for records: everything but the range's rule,
        which is given as its values where ``n_modes`` is known."""
        out = {"key": self.key, "label": self.label, "short": self.short, "about": self.about, "best": self.best,
               "scale": self.scale, "fmt": self.fmt, "data": self.data, "values": self.values,
               "progress": self.progress}
        if self.limits and n_modes:
            out["limits"] = list(self.limits(n_modes))
        if self.band:
            out["band"] = list(self.band)
        if self.factors:
            out["factors"] = dict(self.factors)
        return out


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the catalog (after every entry so far); a key registered twice is an error."""
    if metric.key in REGISTRY:
        raise ValueError(f"metric {metric.key!r} is already registered")
    REGISTRY[metric.key] = metric
    return metric


def get(key: str) -> Metric:
    return REGISTRY[key]


def every() -> list[Metric]:
    """Every registered metric, in catalog order."""
    return list(REGISTRY.values())


def quality(data: Literal["toy", "image"] | None = None) -> list[Metric]:
    """The metrics that judge a fit (those with a best end), in catalog order; with ``data``,
    only those that apply to it."""
    return [m for m in REGISTRY.values() if m.best is not None and (data is None or m.data in (None, data))]


def progress_line(metrics: Mapping[str, Any]) -> str:
    """The progress-line metrics among ``metrics``, e.g. ``modes (strict) 8/8, hq fraction 0.97, successful``."""
    n_modes = metrics.get("n_modes")
    return ", ".join(m.text(metrics[m.key], n_modes) for m in REGISTRY.values() if m.progress and m.key in metrics)


def describe(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The plain description of each catalogued metric in ``metrics`` (a record's), keyed like them."""
    n_modes = metrics.get("n_modes")
    return {k: REGISTRY[k].describe(n_modes) for k in metrics if k in REGISTRY}


def _unit(_: int) -> tuple[float, float]:
    return 0.0, 1.0


def _modes(n_modes: int) -> tuple[float, float]:
    return 0.0, float(n_modes)


# --- mixtures with known modes (`metrics.ring`) ---------------------------------------------

register(Metric("success", "success", "successful", f"A run's verdict under the success rule ({SUCCESS_RULE})",
                "high", limits=_unit, progress=True, data="toy", values="flag"))
register(Metric("modes_covered_strict", "modes strictly covered", "modes (strict)",
                f"Modes strictly covered: modes holding >= {COVER_SHARE:.0%} of a uniform share of high-quality "
                "samples", "high", fmt=".1f", limits=_modes, progress=True, data="toy", values="count"))
register(Metric("modes_covered", "modes covered (PacGAN)", "modes (PacGAN)",
                "Modes covered (PacGAN's rule): modes with at least one high-quality sample", "high", fmt=".1f",
                limits=_modes, data="toy", values="count"))
register(Metric("hq_fraction", "high-quality fraction", "hq fraction",
                f"High-quality fraction: samples within {HQ_RADIUS:g} standard deviations of their nearest mode",
                "high", limits=_unit, progress=True, data="toy"))
SPREAD_SCALE = dict(scale="log", limits=lambda _: (1 / 8, 8.0), band=(1 / SUCCESS_SPREAD, SUCCESS_SPREAD),
                    ticks=(1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0), data="toy")
register(Metric("spread", "spread, worst direction (data = 1)", "spread",
                "Spread of the samples around their modes relative to the data, in the direction farthest from the "
                "data's (1 = the data's; above: a smear or an over-dispersed fit, below: samples piled on the "
                "centres; undefined without a strictly covered mode); the success rule accepts 1/sqrt 2..sqrt 2",
                "centre", progress=True, **SPREAD_SCALE))
for _direction, _words in (("tangential", "along the ring"), ("radial", "radially, towards and away from the "
                           "ring's centre"), ("normal", "across the ring's plane (3-D rings)")):
    register(Metric(f"spread_{_direction}", f"spread {_direction} (data = 1)", f"spread {_direction[:3]}.",
                    f"Spread of the samples around their modes {_words}, relative to the data's in that direction",
                    "centre", **SPREAD_SCALE))
register(Metric("mode_kl", "mode KL from uniform (nats)", "mode KL",
                "Mode KL: KL divergence (nats) of the high-quality samples' mode histogram from uniform; 0 is best, "
                "log n_modes the worst", "low", limits=lambda n: (0.0, math.log(n)), data="toy"))
register(Metric("mmd2", "MMD$^2$ to true samples", "MMD^2",
                "MMD^2 to fresh true samples under a fixed sum of Gaussian kernels (never learned); values below "
                "1e-4, the unbiased estimate's noise floor (negatives included), count as the floor", "low", "log",
                ".2g", limits=lambda _: (1e-4, 2.0 * len(MMD_SIGMAS)), data="toy"))  # top: twice the kernel's max
register(Metric("finite_fraction", "finite fraction", "finite fraction",
                "Finite fraction: samples without a non-finite coordinate", "high", limits=_unit, data="toy"))
register(Metric("failure", "failure type", "failure",
                f"Why a run fails the success rule, the first that applies: {', '.join(FAILURES[1:])} (ok when it "
                "succeeds; see metrics.ring)", None, progress=True, data="toy", values="category"))
register(Metric("n_modes", "modes of the data", "modes", "The number of modes of the data set", None, fmt="d",
                data="toy", values="count"))

# --- images (`metrics.images`, through torch-fidelity) ---------------------------------------

register(Metric("fid", "FID", "FID", "Fréchet distance between the features of generated and real images", "low",
                "log", progress=True, data="image"))
register(Metric("kid", "KID", "KID", "Kernel (polynomial) MMD^2 between the features of generated and real images, "
                "mean over subsets", "low", "log", progress=True, data="image", factors={"inception": 1e3}))
register(Metric("isc", "IS", "IS", "Inception Score (a classifier score for the offline extractor)", "high",
                progress=True, data="image"))
register(Metric("precision", "precision", "precision",
                "Precision: generated images inside the real images' k-NN balls in feature space", "high",
                limits=_unit, progress=True, data="image"))
register(Metric("recall", "recall", "recall",
                "Recall: real images inside the generated images' k-NN balls in feature space", "high",
                limits=_unit, progress=True, data="image"))
register(Metric("kid_std", "KID std over subsets", "KID std", "Standard deviation of KID over its subsets", None,
                data="image", factors={"inception": 1e3}))
register(Metric("isc_std", "IS std over splits", "IS std", "Standard deviation of the Inception Score over splits",
                None, data="image"))

# --- every run -------------------------------------------------------------------------------

register(Metric("wall_time_s", "wall time (s)", "wall s", "Wall-clock seconds the run's stack trained", None,
                fmt=".0f"))
