"""The statistics every table and verdict uses, in one place so each rule is stated once.

- `mean_std`: mean and sample standard deviation (ddof 1) over seeds; no std from one seed.
- `wilson`: the 95% Wilson score interval of a success rate (`scipy.stats.binomtest`),
  which stays inside [0, 1] and is honest at 0/n and n/n, unlike the normal approximation.
- `best_by_welch`: which entry of a row may be called best: the best mean, only when it
  beats every other entry by Welch's unequal-variance t-test (two-sided, 5%) and every entry
  has at least `MIN_SEEDS` seeds. The rule's text, `BOLD_RULE`, goes into every caption.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
ALPHA = 0.05
MIN_SEEDS = 3
BOLD_RULE = (f"bold: the best mean of its row, only where it beats every other entry by Welch's t-test "
             f"(two-sided, p < {ALPHA:g}, no correction for several comparisons) and every entry has at "
             f"least {MIN_SEEDS} seeds")


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, standard deviation with ddof 1, n) of the finite ``values``; std is NaN for n < 2."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v)


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of ``successes``/``n`` (no continuity correction); NaNs for n = 0."""
    if n == 0:
        return math.nan, math.nan
    from scipy import stats  # half a second to import: only where a table needs it, not for --help
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def welch_p(a: tuple[float, float, int], b: tuple[float, float, int]) -> float:
    """Two-sided p-value of Welch's t-test between two (mean, std, n) summaries; NaN when
    either has fewer than two values or both have no spread."""
    (ma, sa, na), (mb, sb, nb) = a, b
    if min(na, nb) < 2 or not (np.isfinite(sa) and np.isfinite(sb)) or sa == sb == 0:
        return math.nan
    from scipy import stats
    return float(stats.ttest_ind_from_stats(ma, sa, na, mb, sb, nb, equal_var=False).pvalue)


def best_by_welch(summaries: Sequence[tuple[float, float, int]], lower_is_better: bool) -> int | None:
    """Index of the entry that `BOLD_RULE` calls best among (mean, std, n) ``summaries``
    (entries without a finite mean take no part), or None when the test does not separate it."""
    entries = [i for i, (m, _, n) in enumerate(summaries) if np.isfinite(m) and n > 0]
    if len(entries) < 2 or any(summaries[i][2] < MIN_SEEDS for i in entries):
        return None
    best = min(entries, key=lambda i: summaries[i][0] if lower_is_better else -summaries[i][0])
    for i in entries:
        if i == best:
            continue
        p = welch_p(summaries[best], summaries[i])
        if not (p < ALPHA) or summaries[best][0] == summaries[i][0]:
            return None
    return best
