"""The image-quality table and sample grids, rebuilt from stored `sweeps.fid` records alone.

    python -m analysis.fid_table results/          # or results/fid, or one setting's directory
    python -m analysis.fid_table results/ --out paper/ --format pdf

Records are grouped by the setting they share (`store.records`); each setting gets its own
tables, beside its records (``<setting>/tables``) or under ``--out``. Layout of Table 1 of
the paper: one row per (grid cell, e.g. the architecture; data set), one column per
objective under its display name, each cell ``mean ± std`` over seeds (std with ddof 1; a
cell with fewer finished seeds than the row's most says so, e.g. ``(2/3)``); one table per
image metric of `metrics.catalog` that judges a fit, in its name, format and unit. Bold marks a
best entry only where a stated test says so (`analysis.stats.BOLD_RULE`: Welch's t-test at
5% against every other entry, at least 3 seeds each); the rule is in every caption. The
feature extractor is named in the caption, never as a hash in the table; a ``Features``
column (short names) appears only where one table mixes extractors. KID is x 10^3 for
Inception-v3 features (the literature's unit) and plain for the offline extractor, whose
features are scaled to unit RMS. Written under ``tables``:

- ``records.csv``: one row per run (config, status, metrics, extractor);
- ``summary.csv``: one row per (arch, data set, extractor, objective) with the numbers;
- ``<metric>.{md,tex}`` with its caption: ``fid``, ``kid``, ``isc`` (only where the
  Inception/classifier score is meaningful), ``precision`` and ``recall``.

And under ``figures``: ``samples_<dataset>_<cell>_<model>.png`` (the first 64 samples of the
lowest finished seed), ``samples_<dataset>_<cell>`` (objectives side by side, in every
``--format``), and ``over_steps_<dataset>_<cell>`` for runs trained with ``--eval-every``
(`analysis.curves`).
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import store
from analysis.command import report_command
from analysis.curves import draw_curves
from analysis.figures import DEFAULT_FORMATS, DOUBLE_COLUMN, save_figure
from analysis.frames import VALUE_NAMES, by_setting, cell_words, dataset_words, describe_setting, frame, read_sweep
from analysis.stats import BOLD_RULE, best_by_welch, mean_std
from analysis.tables import pm, write_table
from core import paper
from metrics import catalog

if TYPE_CHECKING:
    import torch

ARCH_ORDER = {"dcgan": 0, "weaker": 1, "mlp": 2}
INCEPTION_PREFIX = "inception"  # `metrics.images` keys Inception-v3 features "inception-<weights digest>"


def is_inception(features_key: str) -> bool:
    return str(features_key).startswith(INCEPTION_PREFIX)


def scale_of(metric: str, features_key: str) -> tuple[float, str]:
    """(factor, unit text) a metric is printed in for an extractor (`metrics.catalog.Metric.factor`:
    KID x 10^3 for Inception features, plain for the offline extractor's unit-scaled features)."""
    factor = catalog.get(metric).factor(features_key)
    return factor, "" if factor == 1 else f" × 10^{np.log10(factor):.0f}"


def short_features(label: str | None, key: str) -> str:
    """An extractor's name without hashes: ``Inception-v3`` or ``offline CNN``."""
    return "Inception-v3" if is_inception(key) else "offline CNN" if label else str(key).split("-")[0]


def load(records: list[store.Record]) -> pd.DataFrame:
    """One row per record: its grid cell, data set, objective entry, status, metrics and the
    feature extractor that scored it."""
    df = frame(records)
    df["dataset_dir"] = [store.dataset_dir(d) for d in df["dataset"]]
    df["features"] = [r.scoring.get("features_key") or "none" for r in records_in(df, records)]
    df["features_label"] = [r.scoring.get("features") for r in records_in(df, records)]
    return df


def records_in(df: pd.DataFrame, records: list[store.Record]) -> list[store.Record]:
    """``records`` in the row order of ``df`` (`frame` sorts them)."""
    by_path = {str(r.path): r for r in records}
    return [by_path[p] for p in df["path"]]


def row_columns(axes: Sequence[str]) -> list[str]:
    """What a table row is: the grid cell's axes, then the data set and the extractor."""
    return [*axes, "dataset", "features"]


def _row_key(index: tuple) -> tuple:
    return tuple((ARCH_ORDER.get(v, 9), str(v)) for v in index)


def summarise(df: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """Per (cell, data set, extractor, objective entry): seeds, finished seeds, mean/std of each metric."""
    rows = row_columns(axes)
    ok = df[df["status"] == "ok"]
    out = []
    for key, g in df.groupby(rows + ["entry"], sort=False):
        good = ok.loc[ok.index.intersection(g.index)]
        row = dict(zip(rows + ["entry"], key), label=g["label"].iloc[0], features_label=g["features_label"].iloc[0],
                   seeds=len(g), finished=len(good))
        for m in catalog.quality("image"):
            vals = good[m.key].astype(float) if m.key in good else []
            row[f"{m.key}_mean"], row[f"{m.key}_std"], row[f"{m.key}_n"] = mean_std(vals)
        out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    order = list(dict.fromkeys(df["entry"]))  # `frame` put them in registry order
    summary["_r"] = [_row_key(tuple(r)) for r in summary[rows].itertuples(index=False)]
    summary["_m"] = summary["entry"].map(order.index)
    return summary.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def _cell(mean: float, std: float, n: int, most: int, fmt: str, scale: float, bold: bool) -> str:
    text = pm(mean, std, fmt, scale)
    if bold and text != "n/a":
        text = f"**{text}**"
    return text + (f" ({n}/{most})" if n < most else "")


def paper_table(summary: pd.DataFrame, metric: str, axes: Sequence[str] = ("arch",)) -> pd.DataFrame:
    """Rows (cell, Dataset[, Features]), columns objectives, ``mean ± std`` strings; bold only
    where `analysis.stats.best_by_welch` says so (markdown ``**``; `analysis.tables.to_latex`
    turns it into ``\\textbf``). The Features column appears only where extractors differ."""
    m = catalog.get(metric)
    several = summary["features"].nunique() > 1
    rows = {}
    for key, g in summary.groupby(row_columns(axes), sort=False):
        stats_ = [(r[f"{metric}_mean"], r[f"{metric}_std"], int(r[f"{metric}_n"])) for _, r in g.iterrows()]
        if not any(np.isfinite(m) for m, _, _ in stats_):
            continue
        best = best_by_welch(stats_, m.best == "low") if m.best in ("high", "low") else None
        scale, _ = scale_of(metric, key[-1])
        most = int(g["seeds"].max())
        cells = {label: _cell(*st, most, m.fmt, scale, i == best)
                 for i, (label, st) in enumerate(zip(g["label"], stats_))}
        label = g["features_label"].iloc[0] if "features_label" in g else None
        rows[(*key[:-1], short_features(label, key[-1])) if several else key[:-1]] = cells
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    names = [a.replace("_", " ").capitalize() for a in axes] + ["Dataset"] + (["Features"] if several else [])
    table.index = pd.MultiIndex.from_tuples([tuple(VALUE_NAMES["arch"].get(v, v) for v in key) for key in table.index],
                                            names=names)
    return table


def caption(summary: pd.DataFrame, labels: dict[str, str], metric: str) -> str:
    """What the table shows, the extractor(s) behind it, the unit, and the bold rule."""
    m = catalog.get(metric)
    title = m.short
    seeds = int(summary["seeds"].max()) if not summary.empty else 0
    keys = list(dict.fromkeys(summary["features"]))
    units = {k: scale_of(metric, k)[1] for k in keys}
    if len(set(units.values())) == 1:
        title += units[keys[0]]
        feats = "; ".join(labels.get(k) or k for k in keys)
    else:
        feats = "; ".join(f"{short_features(labels.get(k), k)} = {labels.get(k) or k} ({title}{units[k]})"
                          for k in keys)
    return (f"{title[:1].upper()}{title[1:]} ({m.better}), mean ± std over up to {seeds} seed(s); "
            f"(n/m): only n of m seeds finished. {BOLD_RULE[0].upper() + BOLD_RULE[1:]}. Features: {feats}.")


def captioned_tables(df: pd.DataFrame, axes: Sequence[str], setting: str
                     ) -> tuple[pd.DataFrame, dict[str, tuple[pd.DataFrame, str]]]:
    """The summary of one setting's rows (`load`) and, per metric with values, its paper
    table (index as columns) and caption."""
    summary = summarise(df, axes)
    labels = dict(zip(df["features"], df["features_label"]))
    out = {}
    for m in catalog.quality("image"):
        table = paper_table(summary, m.key, axes) if not summary.empty else pd.DataFrame()
        if not table.empty:
            cap = caption(summary[summary[f"{m.key}_n"] > 0], labels, m.key) + f" Setting: {setting}."
            out[m.key] = (table.reset_index(), cap)
    return summary, out


def write_tables(tables: dict[str, tuple[pd.DataFrame, str]], objectives: set[str], out_dir: Path,
                 comment: str = "") -> dict[str, str]:
    """The markdown and LaTeX file of every (table, caption) (the numbers are in
    ``summary.csv``; ``comment`` above each LaTeX table); returns the markdown texts."""
    texts = {}
    for metric, (table, cap) in tables.items():
        lead = len(table.columns) - len(objectives & set(table.columns))  # row columns, left-aligned
        texts[metric] = write_table(table, None, out_dir, metric, cap, lead, comment)
    return texts


def _grid(record_dir: Path, n: int = 64) -> torch.Tensor | None:
    import torch
    from torchvision.utils import make_grid
    try:
        images = torch.from_numpy(store.load_samples(record_dir)[:n])
    except (OSError, KeyError):
        return None
    return make_grid(images.float() / 255.0, nrow=int(np.ceil(np.sqrt(len(images)))), padding=2, pad_value=1.0)


def draw_sample_grids(df: pd.DataFrame, out_dir: Path, formats: Sequence[str] | None = None) -> list[Path]:
    """Per (data set, cell): one grid PNG per objective (its lowest finished seed) and one
    figure with them side by side."""
    written = []
    finished = df[df["status"].isin(["ok", "diverged"])].sort_values("seed", kind="stable")
    entries = list(dict.fromkeys(df["entry"]))
    seeds = {}
    for (dset, cell), g in finished.groupby(["dataset_dir", "cell"], sort=False):
        grids = {}
        seeds[dset, cell] = ", ".join(map(str, sorted(g.groupby("entry")["seed"].min().unique())))
        for e in [e for e in entries if e in set(g["entry"])]:
            first = g[g["entry"] == e].iloc[0]
            grid = _grid(Path(first["path"]))
            if grid is None:
                continue
            grids[first["label"]] = grid
            path = out_dir / f"samples_{dset}_{cell}_{first['slug']}.png"
            from torchvision.utils import save_image
            save_image(grid, path)
            written.append(path)
        if grids:
            title = f"{dataset_words(dset)}, {cell_words(cell) or 'one cell'}; seed {seeds[dset, cell]}"
            written.append(save_figure(_side_by_side(grids, title), out_dir / f"samples_{dset}_{cell}", formats))
    return written


def _side_by_side(grids: dict[str, torch.Tensor], title: str) -> plt.Figure:
    """Sample grids under their objectives' names, up to four a row at double-column width."""
    per_row = min(4, len(grids))
    n_rows = -(-len(grids) // per_row)
    side = DOUBLE_COLUMN / per_row
    fig, axs = plt.subplots(n_rows, per_row, figsize=(DOUBLE_COLUMN, n_rows * (side + 0.2) + 0.25), squeeze=False,
                            constrained_layout=True)
    for ax, item in itertools.zip_longest(axs.flat, grids.items()):
        ax.set_axis_off()
        if item is not None:
            ax.imshow(item[1].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(item[0])
    fig.suptitle(title)
    return fig


def write_report(records: list[store.Record], out_dir: Path, figures: bool = True,
                 formats: Sequence[str] = DEFAULT_FORMATS) -> str:
    """The tables (and sample grids) of one setting's records, into ``out_dir``; returns markdown."""
    df = load(records)
    axes = list(records[0].axes)
    tables, figs = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    store.write_text(tables / "records.csv", df.drop(columns=["path"]).to_csv(index=False))
    setting = describe_setting(records[0])  # in words; its directory name goes in a LaTeX comment
    if (n := records[0].config.get("n_samples", paper.SAMPLES)) < paper.SAMPLES:  # e.g. the smoke preset
        setting += (f". Scored on {n:,} samples per run, not the usual {paper.SAMPLES:,}: FID is biased upwards "
                    "with few samples, so these numbers check the pipeline and are not comparable to published ones")
    summary, captioned = captioned_tables(df, axes, setting)
    store.write_text(tables / "summary.csv", summary.to_csv(index=False))
    texts = write_tables(captioned, set(df["label"]), tables, f"setting {records[0].setting}")
    if figures:
        figs.mkdir(parents=True, exist_ok=True)
        draw_sample_grids(df, figs, formats)
        draw_curves(records, figs, formats)  # metrics over steps, where runs have them
    failed = df[df["status"] != "ok"]
    notes = "".join(f"\n- {p}: {s} ({r})" for p, s, r in zip(failed["path"], failed["status"], failed["reason"]))
    body = "\n".join(texts.values()) or "no finished runs with metrics yet\n"
    return body + (f"\nruns without metrics:{notes}\n" if notes else "") + f"\ntables: {tables}\nfigures: {figs}"


def report(root: Path, out: Path | None = None, figures: bool = True, prog: str = "analysis.fid_table",
           formats: Sequence[str] = DEFAULT_FORMATS) -> str | None:
    """Tables and sample grids for every setting of image records below ``root``, each beside
    its records or under ``out/<setting>``; returns markdown (None when there are none)."""
    records = read_sweep(root, "fid", prog)
    if not records:
        return None
    return "\n\n".join(write_report(group, Path(out) / setting if out else store.setting_dir_of(group[0]), figures,
                                    formats) for setting, group in by_setting(records))


def main(argv: list[str] | None = None) -> int:
    return report_command("python -m analysis.fid_table", "Rebuild the FID/KID/IS tables and sample grids from "
                          "stored records, per setting.", report, argv)


if __name__ == "__main__":
    sys.exit(main())
