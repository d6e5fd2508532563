"""The paper's claims (`/shared/paper/NOTES.md`) and the rule that decides each one from our
records (docs/analysis.md states every rule).

A verdict reads **reproduced** or **not reproduced** only on records at the paper's setting
(the block below). Records away from it read **indicative only** with the reasons in words
(e.g. "3,000 steps; the paper trains 10,500"), records of another data set than the paper's
carry **extension (the paper shows ring2d only)**, and each then says whether the records
support the claim. A claim whose records are missing, or were scored by an older
`metrics.ring` (no failure type), is **not run**. A ring claim reads only its complete seeds:
those for which every objective it names has a run in every cell (`complete_seeds`).

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

from analysis.fid_table import is_inception, short_features
from analysis.frames import axis_name, levels
from analysis.stats import mean_std, welch_p, wilson
from core import paper
from metrics.success import FAILURES, SUCCESS_RULE, SUCCESS_SPREAD

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
INDICATIVE, SUPPORTS, DOES_NOT_SUPPORT = "indicative only", "supports the claim", "does not support the claim"
GAN, MMDNET, MMDGAN, GRAM = "gan", "mmdnet", "mmdgan", "gram"  # registry names of the paper's objectives
PAPER_MODELS = {GAN: "GAN", MMDNET: "MMD-net", MMDGAN: "MMD-GAN", GRAM: "GRAM-net"}

# --- the paper's setting: every grid and length lookup of this module reads this block ---
PAPER_DATASET = "ring2d"  # the stability figures (Fig. 2, Fig. 7) are 2-D only
PAPER_GRID = paper.RING_GRID
PAPER_STEPS = paper.RING_STEPS
PAPER_BATCH = paper.RING_BATCH
IMAGE_STEPS = paper.IMAGE_STEPS  # the harness's full image run (`sweeps.fid` "full")
PAPER_FID = {  # Table 1: (arch, dataset) -> objective -> (mean, std) over runs
    ("dcgan", "cifar10"): {MMDGAN: (40.00, 0.56), GAN: (26.82, 0.49), GRAM: (24.85, 0.94)},
    ("weaker", "cifar10"): {MMDGAN: (210.85, 8.92), GAN: (31.64, 2.10), GRAM: (24.82, 0.62)},
    ("dcgan", "celeba"): {MMDGAN: (41.105, 1.42), GAN: (30.97, 5.32), GRAM: (27.04, 4.24)},
}
# ---

PAPER_CELLS = int(np.prod([len(v) for v in PAPER_GRID.values()]))
PAPER_GRID_WORDS = " x ".join(f"{axis_name(a)} {', '.join(map(str, v))}" for a, v in PAPER_GRID.items())
PAPER_RING = (f"{PAPER_DATASET}, the paper's grid ({PAPER_GRID_WORDS}), one seed per cell, {PAPER_STEPS:,} generator "
              f"steps at batch {PAPER_BATCH}")
EXTENSION = f"extension (the paper shows {PAPER_DATASET} only)"
WIDE = 100  # "width >= 100"
PAPER_GAN_FAILURES = ("collapse", "missed-modes", "off-modes")  # the paper's GAN failure: collapse, missed modes
RESCORE = ("scored by an older metrics.ring (no failure type, no per-direction spread): rescore the stored samples "
           "with python -m sweeps.rescore RESULTS")


@dataclass(frozen=True)
class Verdict:
    """One claim decided on one body of records (``scope``). ``holds`` is None when the
    records it needs are missing; ``caveats`` say in words how the records differ from the
    paper's setting; ``extension`` marks records of another data set than the paper's."""

    claim: str
    scope: str  # which records, in a few words: data set and setting
    basis: str  # what those records are: grid, seeds, steps
    paper: str
    criterion: str
    measured: str
    holds: bool | None
    caveats: tuple[str, ...] = ()
    extension: bool = False

    @property
    def verdict(self) -> str:
        """reproduced / not reproduced at the paper's setting, else the labels and whether
        the records support the claim; not run without records."""
        if self.holds is None:
            return NOT_RUN
        if not self.caveats and not self.extension:
            return REPRODUCED if self.holds else NOT_REPRODUCED
        labels = [EXTENSION] * self.extension + [f"{INDICATIVE} ({'; '.join(self.caveats)})"] * bool(self.caveats)
        return f"{'; '.join(labels)}: {SUPPORTS if self.holds else DOES_NOT_SUPPORT}"


def rate(k: int, n: int) -> str:
    """``"7/12 = 0.58 [0.32, 0.81]"``: a count, its rate and the 95% Wilson interval."""
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]" if n else "0/0"


def failures(runs: pd.DataFrame) -> pd.Series:
    """Each run's failure type (`metrics.ring.failure_type`); crashed and diverged runs
    count under their status; NaN for finished runs scored without one."""
    status = runs["status"] if "status" in runs else pd.Series("ok", index=runs.index)
    kind = runs["failure"] if "failure" in runs else pd.Series(np.nan, index=runs.index, dtype=object)
    return kind.where(status == "ok", status)


def failure_counts(runs: pd.DataFrame) -> str:
    """``"failure types: ok 59, too-wide 1"``, in the order of `metrics.success.FAILURES`."""
    counts = failures(runs).value_counts()
    order = [f for f in FAILURES if f in counts] + sorted(set(counts.index) - set(FAILURES))
    return "failure types: " + ", ".join(f"{f} {int(counts[f])}" for f in order)


def failure_table(df: pd.DataFrame) -> pd.DataFrame:
    """Runs per objective (rows, by label) and failure type (columns), with the total."""
    table = pd.crosstab(df["label"], failures(df).fillna("not scored")).reindex(list(dict.fromkeys(df["label"])))
    cols = [f for f in FAILURES if f in table] + sorted(set(table.columns) - set(FAILURES))
    table = table[cols].assign(runs=table.sum(axis=1))
    table.index.name, table.columns.name = "objective", None
    return table.reset_index()


def _cell_words(runs: pd.DataFrame, cell: str, axes: Sequence[str]) -> str:
    row = runs[runs["cell"] == cell].iloc[0]
    return ", ".join(f"{axis_name(a)} {row[a]}" for a in axes if a in runs) or cell


def _seeds_per_cell(runs: pd.DataFrame, mask: pd.Series) -> pd.Series:
    """Per cell of ``runs``, the number of seeds whose run satisfies ``mask``."""
    return runs[mask].groupby("cell")["seed"].nunique().reindex(sorted(runs["cell"].unique()), fill_value=0)


Judge = Callable[[dict[str, pd.DataFrame], Sequence[str]], "tuple[str, bool] | None"]


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


def _gram_fits(runs: dict[str, pd.DataFrame], axes: Sequence[str]) -> tuple[str, bool]:
    g = runs[GRAM]
    seeds, cells = g["seed"].nunique(), g["cell"].nunique()
    per_cell = _seeds_per_cell(g, g["success"])
    per_seed = g[g["success"]].groupby("seed")["cell"].nunique()
    whole = int((per_seed == cells).sum())
    majority = int((per_cell > seeds / 2).sum())
    weakest = per_cell.idxmin()
    measured = (f"seeds whose every cell succeeds {rate(whole, seeds)}; cells where most seeds succeed "
                f"{rate(majority, cells)}; weakest cell ({_cell_words(g, weakest, axes)}) "
                f"{rate(int(per_cell.min()), seeds)}; successful runs {rate(int(per_cell.sum()), cells * seeds)}; "
                f"{failure_counts(g)}")
    return measured, whole > seeds / 2 and majority == cells


def _gan_fails(runs: dict[str, pd.DataFrame], axes: Sequence[str]) -> tuple[str, bool] | None:
    g = runs[GAN]
    if "width" not in g or not (g["width"] >= WIDE).any():
        return None
    wide = g[g["width"] >= WIDE]
    kind = failures(wide)
    paper_way = kind.isin(PAPER_GAN_FAILURES)
    per_cell = _seeds_per_cell(wide, paper_way)
    failing, cells = int((per_cell > wide["seed"].nunique() / 2).sum()), len(per_cell)
    measured = (f"cells of width >= {WIDE} where most seeds collapse or miss modes {rate(failing, cells)}; such "
                f"runs {rate(int(paper_way.sum()), len(wide))}; beside it, over-dispersed (too-wide) runs "
                f"{rate(int((kind == 'too-wide').sum()), len(wide))}; at width >= {WIDE}, {failure_counts(wide)}")
    return measured, failing > cells / 2


def _median(values: pd.Series) -> str:
    v = values.astype(float)
    return f"{np.nanmedian(v):.2f}" if v.notna().any() else "n/a"


def _mmdnet_smears(runs: dict[str, pd.DataFrame], axes: Sequence[str]) -> tuple[str, bool]:
    g = runs[MMDNET]
    smear = (g["modes_covered_strict"] == g["n_modes"]) & (g["spread"] > SUCCESS_SPREAD)
    k, n = _success(g)
    along = f"; median spread along the ring {_median(g['spread_tangential'])}" if "spread_tangential" in g else ""
    return (f"smeared runs {rate(int(smear.sum()), len(g))}; median spread {_median(g['spread'])}{along}; successful "
            f"runs {rate(k, n)}; {failure_counts(g)}"), int(smear.sum()) / len(g) > 0.5


def _covers(runs: pd.DataFrame) -> tuple[int, int]:
    return int((runs["modes_covered_strict"] == runs["n_modes"]).sum()), len(runs)


def _mmdgan_between(runs: dict[str, pd.DataFrame], axes: Sequence[str]) -> tuple[str, bool]:
    cover = {m: _covers(runs[m]) for m in (GAN, MMDGAN)}
    success = {m: _success(runs[m]) for m in (MMDGAN, GRAM)}
    share = {key: {m: k / n for m, (k, n) in d.items()} for key, d in (("cover", cover), ("success", success))}
    measured = (f"runs with every mode strictly covered: GAN {rate(*cover[GAN])}, MMD-GAN {rate(*cover[MMDGAN])}; "
                f"successful runs: MMD-GAN {rate(*success[MMDGAN])}, GRAM-net {rate(*success[GRAM])}; MMD-GAN "
                f"{failure_counts(runs[MMDGAN])}")
    return measured, share["cover"][MMDGAN] >= share["cover"][GAN] and share["success"][MMDGAN] < share["success"][GRAM]


RING_CLAIMS = [
    RingClaim("GRAM-net fits all modes in all cells",
              "GRAM-net fits all 8 modes in all 12 cells, one seed per cell (Fig. 2b)",
              f"read per seed's grid, as the paper shows one: reproduced when more than half of the seeds succeed in "
              f"every cell and every cell succeeds in more than half of the seeds ({SUCCESS_RULE})",
              (GRAM,), _gram_fits),
    RingClaim("GAN fails in most cells of width >= 100",
              "GAN collapses or misses modes in most cells with width >= 100 (Fig. 2a)",
              f"a run fails as the paper shows when it collapses, misses modes or puts fewer than half of its samples "
              f"on the modes (failure type {', '.join(PAPER_GAN_FAILURES)}); reproduced when more than half of the "
              f"cells of width >= {WIDE} fail that way in more than half of their seeds; over-dispersed (too-wide) "
              f"runs are reported beside it, not counted",
              (GAN,), _gan_fails),
    RingClaim("MMD-net smears",
              "MMD-net covers the ring but smears samples between the modes (Fig. 7a)",
              f"a smear is a run with every mode strictly covered and spread > sqrt 2 (= {SUCCESS_SPREAD:.3f}: "
              f"wider than the success band in its worst direction); reproduced when more than half of the MMD-net "
              f"runs are smears",
              (MMDNET,), _mmdnet_smears),
    RingClaim("MMD-GAN lies in between",
              "MMD-GAN is in between: it does not collapse like GAN, but is noisier than GRAM-net (Fig. 7b)",
              "reproduced when MMD-GAN's runs cover every mode (strictly) at least as often as GAN's and succeed "
              "less often than GRAM-net's",
              (GAN, MMDGAN, GRAM), _mmdgan_between),
]


def has_paper_grid(df: pd.DataFrame) -> bool:
    """Whether the rows hold every cell of the paper's grid."""
    if not set(PAPER_GRID) <= set(df.columns):
        return False
    have = set(df[list(PAPER_GRID)].itertuples(index=False, name=None))
    return all(c in have for c in pd.MultiIndex.from_product(list(PAPER_GRID.values())))


def paper_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The rows in cells of the paper's grid."""
    mask = np.logical_and.reduce([df[a].isin(v) for a, v in PAPER_GRID.items()])
    return df[mask]


def _grid_words(df: pd.DataFrame, axes: Sequence[str]) -> str:
    return " x ".join(f"{axis_name(a)} {', '.join(map(str, levels(df, a)))}" for a in axes if a in df)


def ring_caveats(df: pd.DataFrame, axes: Sequence[str] = ()) -> list[str]:
    """How one (setting, data set)'s rows differ from the paper's setting, in words (empty
    at the paper's setting)."""
    out = []
    steps = sorted(df["steps"].unique())
    if steps != [PAPER_STEPS]:
        out.append(f"{', '.join(f'{s:,}' for s in steps)} steps; the paper trains {PAPER_STEPS:,}")
    if "batch" in df and sorted(df["batch"].unique()) != [PAPER_BATCH]:
        out.append(f"batch {', '.join(map(str, sorted(df['batch'].unique())))}; the paper's is {PAPER_BATCH}")
    if not has_paper_grid(df):
        out.append(f"grid {_grid_words(df, PAPER_GRID) or 'none'} ({df['cell'].nunique()} cells); the paper's is "
                   f"{PAPER_GRID_WORDS} ({PAPER_CELLS} cells)")
    extra = [a for a in axes if a not in PAPER_GRID and a in df and df[a].nunique() > 1]
    if extra:
        out.append("also varies " + ", ".join(f"{axis_name(a)} ({', '.join(map(str, levels(df, a)))})" for a in extra))
    return out


def ring_basis(df: pd.DataFrame, axes: Sequence[str] = ()) -> str:
    """What a ring verdict rests on (grid, seeds, steps), to set beside the paper's."""
    grid = _grid_words(df, list(dict.fromkeys([*PAPER_GRID, *axes])))
    steps = ", ".join(f"{s:,}" for s in sorted(df["steps"].unique()))
    seeds = ", ".join(map(str, sorted(df["seed"].unique())))
    return f"{grid} ({df['cell'].nunique()} cells), seeds {seeds}; {steps} steps"


def ring_verdicts(df: pd.DataFrame | None, scope: str, basis: str = "", axes: Sequence[str] = ()) -> list[Verdict]:
    """Every ring claim decided on one (setting, data set)'s rows (`analysis.frames.frame`;
    ``axes``: the setting's grid axes); ``df=None``: no stability records (every claim not
    run). Rows beyond the paper's grid are left out when they hold all of it."""
    if df is None:
        return [Verdict(c.claim, scope, basis, c.paper, c.criterion, "no stability records", None) for c in RING_CLAIMS]
    axes = list(axes) or [a for a in PAPER_GRID if a in df]
    caveats = tuple(ring_caveats(df, axes))
    extension = bool((df["dataset"] != PAPER_DATASET).any()) if "dataset" in df else False
    judged = paper_cells(df) if has_paper_grid(df) else df
    unscored = failures(judged).isna().any()
    cells = set(judged["cell"])
    out = []
    for c in RING_CLAIMS:
        runs = {m: judged[judged["model"].isin([m])] for m in c.models}
        missing = [PAPER_MODELS[m] for m in c.models if runs[m].empty]
        seeds = [] if missing else complete_seeds(runs, cells)
        kept = {m: r[r["seed"].isin(seeds)] for m, r in runs.items()}
        result = None if missing or unscored or not seeds else c.judge(kept, axes)
        if result is None:
            why = (f"no {', '.join(missing)} records" if missing else RESCORE if unscored
                   else f"no seed has a run in every cell for {', '.join(PAPER_MODELS[m] for m in c.models)}"
                   if not seeds else "the records lack the cells the claim is about")
            out.append(Verdict(c.claim, scope, basis, c.paper, c.criterion, why, None, caveats, extension))
        else:
            measured, holds = result
            measured += set_aside(runs, seeds, len(cells))
            out.append(Verdict(c.claim, scope, basis, c.paper, c.criterion, measured, bool(holds), caveats, extension))
    return out


def complete_seeds(runs: dict[str, pd.DataFrame], cells: set[str]) -> list[int]:
    """The seeds for which every objective in ``runs`` has a run (of any status) in every one
    of ``cells``: a claim is judged on these alone, because the runs of a half-trained seed
    are not a fair sample of the grid (the sweep trains the costliest stacks first)."""
    per_model = [{s for s, g in r.groupby("seed") if cells <= set(g["cell"])} for r in runs.values()]
    return sorted(set.intersection(*per_model)) if per_model else []


def set_aside(runs: dict[str, pd.DataFrame], seeds: Sequence[int], cells: int) -> str:
    """The runs a verdict leaves out, in words (empty when none): per objective, its runs of
    other seeds than ``seeds``, and which of those seeds it has not completed itself."""
    parts = []
    for m, r in runs.items():
        rest = r[~r["seed"].isin(seeds)]
        if len(rest):
            per_seed = rest.groupby("seed")["cell"].nunique()
            partial = per_seed[per_seed < cells]
            parts.append(f"{PAPER_MODELS.get(m, m)} {len(rest)} runs of seed(s) {', '.join(map(str, per_seed.index))}"
                         + (f", seed(s) {', '.join(map(str, partial.index))} incomplete ({int(partial.sum())} of "
                            f"{cells * len(partial)} cells)" if len(partial) else ""))
    return (f"; judged on the seeds complete for every objective of the claim: {', '.join(map(str, seeds))}; set "
            "aside: " + "; ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Finding:
    """A finding beyond the paper's claims: its statement in words and the table it rests on."""

    text: str
    table: pd.DataFrame


def noise_dim_finding(df: pd.DataFrame, data_dim: int, scope: str) -> Finding | None:
    """What one (setting, data set)'s records show about noise dimensions below the data's
    dimension ``data_dim`` against those at or above it. The table: per objective and noise
    dimension the successful runs (Wilson interval), successful seeds per width, median MMD^2,
    median spread along the ring and the failure types. The text: per objective, the
    successful runs and the median MMD^2 of each lower dimension against the objective's
    lowest dimension at or above the data's. An objective is left out unless its records have
    noise dimensions on both sides; None when no objective has."""
    if df is None or df.empty or "noise_dim" not in df:
        return None
    rows, sentences = [], []
    for label, g in df.groupby("label", sort=False):
        dims = levels(g, "noise_dim")
        below, reference = [d for d in dims if d < data_dim], next((d for d in dims if d >= data_dim), None)
        if not below or reference is None:
            continue
        mmd, success = {}, {}
        for d in dims:
            h = g[g["noise_dim"] == d]
            mmd[d] = float(np.nanmedian(h["mmd2"].astype(float))) if "mmd2" in h and h["mmd2"].notna().any() \
                else math.nan
            success[d] = rate(*_success(h))
            per_width = ", ".join(f"{w}: {int(x['success'].sum())}/{len(x)}" for w, x in h.groupby("width")) \
                if "width" in h else ""
            rows.append({"objective": label, "noise dimension": d, "successful runs": success[d],
                         "successful seeds per width": per_width,
                         "median MMD²": f"{mmd[d]:.3g}",
                         "median spread along the ring": _median(h["spread_tangential"])
                         if "spread_tangential" in h else "n/a",
                         "failure types": failure_counts(h).removeprefix("failure types: ")})
        ratios = [f"{mmd[d] / mmd[reference]:.1f} times" if mmd[reference] > 0 and np.isfinite(mmd[d]) else "n/a"
                  for d in below]
        sentences.append(f"{label}: successful runs " + ", ".join(f"{success[d]} at noise dimension {d}" for d in below)
                         + f" against {success[reference]} at noise dimension {reference}; median MMD² at noise "
                         "dimension " + ", ".join(f"{d} is {r}" for d, r in zip(below, ratios))
                         + f" that at noise dimension {reference}.")
    if not rows:
        return None
    return Finding(f"Noise dimension below the data's dimension ({data_dim}), {scope}. " + " ".join(sentences),
                   pd.DataFrame(rows))


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


def fid_caveats(arch: str, dataset: str, features: str, label: str | None, steps: Sequence[int]) -> list[str]:
    """How one image cell differs from the paper's Table 1, in words (empty when it does not)."""
    out = []
    if (arch, dataset) not in PAPER_FID:
        out.append(f"{dataset} with {arch or 'this architecture'} is not in the paper's Table 1")
    if not is_inception(features):
        out.append(f"features: {short_features(label, features)}, not the paper's Inception-v3")
    if min(steps) < IMAGE_STEPS:
        out.append(f"{', '.join(f'{s:,}' for s in sorted(steps))} steps; the harness's full image run trains "
                   f"{IMAGE_STEPS:,} (the paper does not state its length)")
    return out


def fid_verdicts(df: pd.DataFrame | None, setting: str = "", axes: Sequence[str] = ("arch",)) -> list[Verdict]:
    """The ordering claim per (cell, data set, extractor) of one setting's image records
    (rows of `analysis.fid_table.load`); ``df=None``: no image records (not run)."""
    order = (GRAM, GAN, MMDGAN)
    if df is None:
        return [Verdict(FID_CLAIM, "no image (FID) records", "", _paper_fid("dcgan", "cifar10"), FID_CRITERION,
                        "no records", None)]
    out = []
    for key, g in df.groupby([*axes, "dataset", "features"], sort=False):
        cell = dict(zip([*axes, "dataset", "features"], key))
        ok = g[g["status"] == "ok"]
        fid = ok["fid"].astype(float) if "fid" in ok else pd.Series(math.nan, index=ok.index)
        stats_ = {m: mean_std(fid[ok["model"].isin([m])]) for m in order}
        label = g["features_label"].iloc[0] if "features_label" in g else None
        extractor = label or cell["features"]
        scope = f"{cell['dataset']}, {', '.join(f'{a} {cell[a]}' for a in axes)} ({setting})"
        seeds = ", ".join(map(str, sorted(g["seed"].unique())))
        basis = f"seeds {seeds}; {', '.join(map(str, sorted(g['steps'].unique())))} steps; features: {extractor}"
        paper = _paper_fid(str(cell.get("arch", "")), cell["dataset"])
        caveats = tuple(fid_caveats(str(cell.get("arch", "")), cell["dataset"], str(cell["features"]), label,
                                    list(g["steps"].unique())))
        missing = [PAPER_MODELS[m] for m in order if stats_[m][2] == 0]
        if missing:
            out.append(Verdict(FID_CLAIM, scope, basis, paper, FID_CRITERION,
                               f"no finished {', '.join(missing)} runs", None, caveats))
            continue
        text = "; ".join(f"{PAPER_MODELS[m]} {stats_[m][0]:.2f} ± {stats_[m][1]:.2f} (n={stats_[m][2]})"
                         for m in order)
        p1, p2 = welch_p(stats_[GRAM], stats_[GAN]), welch_p(stats_[GAN], stats_[MMDGAN])
        text += f"; Welch p: GRAM-net vs GAN {_p(p1)}, GAN vs MMD-GAN {_p(p2)}"
        holds = stats_[GRAM][0] < stats_[GAN][0] < stats_[MMDGAN][0]
        out.append(Verdict(FID_CLAIM, scope, basis, paper, FID_CRITERION, text, bool(holds), caveats))
    return out
