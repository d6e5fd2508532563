"""The paper's claims (`/shared/paper/NOTES.md`) and the rule that decides each one from our
records: reproduced, not reproduced, or not run (the records a claim needs are missing).

Each rule was written down before any result was looked at and is printed beside the
verdict; never change one to make a claim come out. Rates carry their 95% Wilson interval
(`analysis.stats.wilson`), FID means their Welch p-values, but a verdict reads the point
estimates against the stated rule; the intervals say how firm it is.

The claims name the paper's objectives, so this module holds their registry names as data
(`PAPER_MODELS`); nothing here branches on an objective's name.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.frames import axis_name, levels
from analysis.stats import mean_std, welch_p, wilson
from core import paper
from metrics.ring import SUCCESS_RULE, SUCCESS_SPREAD

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
GAN, MMDNET, MMDGAN, GRAM = "gan", "mmdnet", "mmdgan", "gram"  # registry names of the paper's objectives
PAPER_MODELS = {GAN: "GAN", MMDNET: "MMD-net", MMDGAN: "MMD-GAN", GRAM: "GRAM-net"}
PAPER_GRID = paper.RING_GRID
PAPER_STEPS = paper.RING_STEPS
PAPER_RING = (f"the paper's grid (noise dimensions 2, 4, 8, 16 x widths 20, 100, 200), one seed per cell, "
              f"{PAPER_STEPS:,} generator steps")
PAPER_FID = {  # Table 1: (arch, dataset) -> objective -> (mean, std) over runs
    ("dcgan", "cifar10"): {MMDGAN: (40.00, 0.56), GAN: (26.82, 0.49), GRAM: (24.85, 0.94)},
    ("weaker", "cifar10"): {MMDGAN: (210.85, 8.92), GAN: (31.64, 2.10), GRAM: (24.82, 0.62)},
    ("dcgan", "celeba"): {MMDGAN: (41.105, 1.42), GAN: (30.97, 5.32), GRAM: (27.04, 4.24)},
}
WIDE = 100  # "width >= 100"


@dataclass(frozen=True)
class Verdict:
    """One claim decided on one body of records (``scope``)."""

    claim: str
    scope: str  # which records, in a few words: data set and setting
    basis: str  # what those records are: grid, seeds, steps
    paper: str
    criterion: str
    measured: str
    verdict: str


def rate(k: int, n: int) -> str:
    """``"7/12 = 0.58 [0.32, 0.81]"``: a count, its rate and the 95% Wilson interval."""
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]" if n else "0/0"


Judge = Callable[[dict[str, pd.DataFrame]], "tuple[str, bool] | None"]


@dataclass(frozen=True)
class RingClaim:
    """A claim about the stability grid: the objectives it needs and its rule (``judge``
    returns the measurement and whether the rule holds, or None when the records it needs
    are missing)."""

    claim: str
    paper: str
    criterion: str
    models: tuple[str, ...]
    judge: Judge


def _success(runs: pd.DataFrame) -> tuple[int, int]:
    return int(runs["success"].sum()), len(runs)


def _gram_fits(runs: dict[str, pd.DataFrame]) -> tuple[str, bool]:
    g = runs[GRAM]
    k, n = _success(g)
    axes = [a for a in PAPER_GRID if a in g]
    cells = g.groupby(axes)["success"].all() if axes else pd.Series([g["success"].all()])
    covered = int((g["modes_covered_strict"] == g["n_modes"]).sum())
    return (f"successful runs {rate(k, n)}; cells where every seed succeeds {int(cells.sum())}/{len(cells)}; "
            f"runs with every mode strictly covered {covered}/{n}"), k == n


def _gan_fails(runs: dict[str, pd.DataFrame]) -> tuple[str, bool] | None:
    g = runs[GAN]
    if "width" not in g or not (g["width"] >= WIDE).any():
        return None
    wide = g[g["width"] >= WIDE]
    k, n = _success(wide)
    cells = wide.groupby([a for a in PAPER_GRID if a in wide])["success"].mean()
    return (f"failed runs at width >= {WIDE}: {rate(n - k, n)}; cells where most seeds fail "
            f"{int((cells < 0.5).sum())}/{len(cells)}"), (n - k) / n > 0.5


def _mmdnet_smears(runs: dict[str, pd.DataFrame]) -> tuple[str, bool]:
    g = runs[MMDNET]
    smear = (g["modes_covered_strict"] == g["n_modes"]) & (g["spread"] > SUCCESS_SPREAD)
    k, n = _success(g)
    spread = g["spread"].astype(float)
    median = f"{np.nanmedian(spread):.2f}" if spread.notna().any() else "n/a"
    return (f"smeared runs {rate(int(smear.sum()), len(g))}; median spread {median}; successful runs {rate(k, n)}",
            int(smear.sum()) / len(g) > 0.5)


def _mmdgan_between(runs: dict[str, pd.DataFrame]) -> tuple[str, bool]:
    p = {m: _success(runs[m]) for m in (GAN, MMDGAN, GRAM)}
    r = {m: k / n for m, (k, n) in p.items()}
    text = "; ".join(f"{PAPER_MODELS[m]} {rate(*p[m])}" for m in (GAN, MMDGAN, GRAM))
    return f"success rates: {text}", r[GAN] < r[MMDGAN] < r[GRAM]


RING_CLAIMS = [
    RingClaim("GRAM-net fits all modes in all cells",
              "GRAM-net fits all 8 modes in all 12 cells (Fig. 2b)",
              f"reproduced when every GRAM-net run, in every cell and seed, passes the success rule ({SUCCESS_RULE})",
              (GRAM,), _gram_fits),
    RingClaim("GAN fails in most cells of width >= 100",
              "GAN collapses or misses modes in most cells with width >= 100 (Fig. 2a)",
              f"reproduced when more than half of the GAN runs in cells of width >= {WIDE} (all seeds) fail the "
              f"success rule",
              (GAN,), _gan_fails),
    RingClaim("MMD-net smears",
              "MMD-net covers the ring but smears samples between the modes (Fig. 7a)",
              f"a smear is a run with every mode strictly covered and spread > sqrt 2 (= {SUCCESS_SPREAD:.3f}: "
              f"wider than the success band); reproduced when more than half of the MMD-net runs are smears",
              (MMDNET,), _mmdnet_smears),
    RingClaim("MMD-GAN lies in between",
              "MMD-GAN is in between: some cells noisy or missing modes (Fig. 7b)",
              "reproduced when MMD-GAN's success rate over all runs lies strictly between GAN's and GRAM-net's",
              (GAN, MMDGAN, GRAM), _mmdgan_between),
]


def ring_basis(df: pd.DataFrame) -> str:
    """What a ring verdict rests on (grid, seeds, steps), to set beside the paper's."""
    axes = [a for a in PAPER_GRID if a in df]
    grid = " x ".join(f"{axis_name(a)} {', '.join(map(str, levels(df, a)))}" for a in axes)
    steps = ", ".join(map(str, sorted(df["steps"].unique())))
    seeds = ", ".join(map(str, sorted(df["seed"].unique())))
    return f"{grid} ({df['cell'].nunique()} cells), seeds {seeds}; {steps} steps"


def ring_verdicts(df: pd.DataFrame | None, scope: str, basis: str = "") -> list[Verdict]:
    """Every ring claim decided on one (setting, data set)'s rows (`analysis.frames.frame`);
    ``df=None``: no stability records at all (every claim not run)."""
    out = []
    for c in RING_CLAIMS:
        runs = {m: df[df["model"].isin([m])] for m in c.models} if df is not None else {}
        missing = [PAPER_MODELS[m] for m in c.models if m not in runs or runs[m].empty]
        result = None if missing else c.judge(runs)
        if result is None:
            why = f"no {', '.join(missing)} records" if missing else "the records lack the cells the claim is about"
            out.append(Verdict(c.claim, scope, basis, c.paper, c.criterion, why, NOT_RUN))
        else:
            measured, holds = result
            out.append(Verdict(c.claim, scope, basis, c.paper, c.criterion, measured,
                               REPRODUCED if holds else NOT_REPRODUCED))
    return out


FID_CLAIM = "FID ordering GRAM-net < GAN < MMD-GAN (Table 1)"
FID_CRITERION = ("reproduced when the mean FIDs over seeds are ordered GRAM-net < GAN < MMD-GAN (lower is better); "
                 "Welch p-values of the neighbours say how firm each step is")


def _p(p: float) -> str:
    return f"{p:.2g}" if np.isfinite(p) else "n/a (< 2 seeds)"


def _paper_fid(arch: str, dataset: str) -> str:
    row = PAPER_FID.get((arch, dataset))
    if row is None:
        return ("GRAM-net < GAN < MMD-GAN on CIFAR-10 (DCGAN, weaker) and CelebA (DCGAN); "
                f"{dataset} with {arch} is not in the paper")
    return " < ".join(f"{PAPER_MODELS[m]} {row[m][0]:.2f} ± {row[m][1]:.2f}" for m in (GRAM, GAN, MMDGAN))


def fid_verdicts(df: pd.DataFrame | None, setting: str = "", axes: Sequence[str] = ("arch",)) -> list[Verdict]:
    """The ordering claim per (cell, data set, extractor) of one setting's image records
    (rows of `analysis.fid_table.load`); ``df=None``: no image records (not run)."""
    order = (GRAM, GAN, MMDGAN)
    if df is None:
        return [Verdict(FID_CLAIM, "no image (FID) records", "", _paper_fid("dcgan", "cifar10"), FID_CRITERION,
                        "no records", NOT_RUN)]
    out = []
    for key, g in df.groupby([*axes, "dataset", "features"], sort=False):
        cell = dict(zip([*axes, "dataset", "features"], key))
        ok = g[g["status"] == "ok"]
        fid = ok["fid"].astype(float) if "fid" in ok else pd.Series(math.nan, index=ok.index)
        stats_ = {m: mean_std(fid[ok["model"].isin([m])]) for m in order}
        extractor = g["features_label"].iloc[0] if "features_label" in g else cell["features"]
        scope = f"{cell['dataset']}, {', '.join(f'{a} {cell[a]}' for a in axes)} ({setting})"
        seeds = ", ".join(map(str, sorted(g["seed"].unique())))
        basis = f"seeds {seeds}; {', '.join(map(str, sorted(g['steps'].unique())))} steps; features: {extractor}"
        paper = _paper_fid(str(cell.get("arch", "")), cell["dataset"])
        missing = [PAPER_MODELS[m] for m in order if stats_[m][2] == 0]
        if missing:
            out.append(Verdict(FID_CLAIM, scope, basis, paper, FID_CRITERION,
                               f"no finished {', '.join(missing)} runs", NOT_RUN))
            continue
        text = "; ".join(f"{PAPER_MODELS[m]} {stats_[m][0]:.2f} ± {stats_[m][1]:.2f} (n={stats_[m][2]})"
                         for m in order)
        p1, p2 = welch_p(stats_[GRAM], stats_[GAN]), welch_p(stats_[GAN], stats_[MMDGAN])
        text += f"; Welch p: GRAM-net vs GAN {_p(p1)}, GAN vs MMD-GAN {_p(p2)}"
        holds = stats_[GRAM][0] < stats_[GAN][0] < stats_[MMDGAN][0]
        out.append(Verdict(FID_CLAIM, scope, basis, paper, FID_CRITERION, text,
                           REPRODUCED if holds else NOT_REPRODUCED))
    return out
