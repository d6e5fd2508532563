"""The ring metrics' success rule and failure types, stated once (`metrics.ring` computes
the metrics; the catalog, the claims and every caption read the rule here, without torch)."""
from __future__ import annotations

import math

COVER_SHARE = 0.1
COLLAPSE_SHARE = 0.25  # collapse: at most this share of the modes strictly covered
SUCCESS_HQ = 0.5
SUCCESS_SPREAD = math.sqrt(2.0)  # success needs 1/SUCCESS_SPREAD <= every direction's spread <= SUCCESS_SPREAD
HQ_RADIUS = 3.0  # in standard deviations (Mahalanobis)
MMD_SIGMAS = (0.1, 0.2, 0.5, 1.0, 2.0)  # the fixed kernel of the MMD^2 to true samples
FAILURES = ("ok", "collapse", "missed-modes", "off-modes", "too-wide", "too-tight")
SUCCESS_RULE = (f"success = every mode holds >= {COVER_SHARE:.0%} of a uniform share of high-quality samples, "
                f">= {SUCCESS_HQ:.0%} of all samples are high quality, and the spread in every direction (along "
                f"the ring, radial, across its plane) is within 1/sqrt 2..sqrt 2 of the data's")


def failure_type(covered_strict: int, n_modes: int, hq_fraction: float, spread: float) -> str:
    """Why a run fails (`FAILURES`), the first rule that applies; "ok" when it succeeds."""
    if covered_strict <= COLLAPSE_SHARE * n_modes:
        return "collapse"
    if covered_strict < n_modes:
        return "missed-modes"
    if not hq_fraction >= SUCCESS_HQ:
        return "off-modes"
    if spread > SUCCESS_SPREAD:
        return "too-wide"
    if spread < 1 / SUCCESS_SPREAD:
        return "too-tight"
    return "ok"
