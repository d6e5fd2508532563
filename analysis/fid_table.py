"""The image-quality table and sample grids, rebuilt from stored `sweeps.fid` records alone.

    python -m analysis.fid_table results/          # or results/fid, or one setting's directory

Records are grouped by the setting they share (`store.records`); each setting gets its own
tables, beside its records (``<setting>/tables``) or under ``--out``. Layout of Table 1 of
the paper: one row per (grid cell, e.g. the architecture; data set; feature extractor),
one column per objective, each cell ``mean ± std`` over seeds (std with ddof 1; a cell
with fewer finished seeds than the row's most says so, e.g. ``(2/3)``); the best cell per
row is bold (lowest FID/KID, highest IS). Written under ``tables``:

- ``records.csv``: one row per run (config, status, metrics, extractor);
- ``summary.csv``: one row per (arch, data set, extractor, objective) with the numbers;
- ``fid.md``/``fid.tex``, ``kid.md``/``kid.tex`` (KID x 10^3), ``isc.md``/``isc.tex``
  (only where the Inception/classifier score is meaningful), ``precision.md``/``.tex`` and
  ``recall.md``/``.tex``, each with a caption that names the feature extractor behind every row.

And under ``figures``: ``samples_<dataset>_<cell>_<model>.png`` (the first 64 samples of the
lowest finished seed) and ``samples_<dataset>_<cell>.png`` (objectives side by side), and
``over_steps_<dataset>_<cell>.png`` for runs trained with ``--eval-every`` (`analysis.curves`).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

import store  # noqa: E402
from analysis.curves import draw_curves  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from analysis.frames import by_setting, describe_setting, frame, read_sweep  # noqa: E402
from analysis.command import report_command  # noqa: E402

ARCH_ORDER = {"dcgan": 0, "weaker": 1, "mlp": 2}
TABLES = {  # metric: (title, scale, lower is better)
    "fid": ("FID", 1.0, True),
    "kid": ("KID x 10^3", 1e3, True),
    "isc": ("IS", 1.0, False),
    "precision": ("Precision", 1.0, False),  # in the FID's feature space (metrics.images)
    "recall": ("Recall", 1.0, False),
}
ARCH_NAMES = {"dcgan": "DCGAN", "weaker": "Weaker", "mlp": "MLP"}


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
        row = dict(zip(rows + ["entry"], key), label=g["label"].iloc[0], seeds=len(g), finished=len(good))
        for metric in TABLES:
            vals = good[metric].astype(float).dropna() if metric in good else pd.Series(dtype=float)
            row[f"{metric}_mean"] = vals.mean() if len(vals) else np.nan
            row[f"{metric}_std"] = vals.std() if len(vals) > 1 else np.nan
            row[f"{metric}_n"] = len(vals)
        out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    order = list(dict.fromkeys(df["entry"]))  # `frame` put them in registry order
    summary["_r"] = [_row_key(tuple(r)) for r in summary[rows].itertuples(index=False)]
    summary["_m"] = summary["entry"].map(order.index)
    return summary.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def _cell(mean: float, std: float, n: int, most: int, scale: float, bold: bool, latex: bool) -> str:
    if not np.isfinite(mean):
        return "n/a"
    text = f"{mean * scale:.2f}"
    if np.isfinite(std):
        text += (r" $\pm$ " if latex else " ± ") + f"{std * scale:.2f}"
    if bold:
        text = rf"\textbf{{{text}}}" if latex else f"**{text}**"
    return text + (f" ({n}/{most})" if n < most else "")


def paper_table(summary: pd.DataFrame, metric: str, axes: Sequence[str] = ("arch",),
                latex: bool = False) -> pd.DataFrame:
    """Rows (cell, Dataset, Features), columns objectives, ``mean ± std`` strings, best in bold."""
    _, scale, lower = TABLES[metric]
    rows = {}
    for key, g in summary.groupby(row_columns(axes), sort=False):
        means = g[f"{metric}_mean"].to_numpy(dtype=float)
        if not np.isfinite(means).any():
            continue
        best = np.nanargmin(means) if lower else np.nanargmax(means)
        most = int(g["seeds"].max())
        rows[key] = {r.label: _cell(r[f"{metric}_mean"], r[f"{metric}_std"], int(r[f"{metric}_n"]), most, scale,
                                    i == best, latex)
                     for i, (_, r) in enumerate(g.iterrows())}
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    names = [a.replace("_", " ").capitalize() for a in axes] + ["Dataset", "Features"]
    table.index = pd.MultiIndex.from_tuples([tuple(ARCH_NAMES.get(v, v) for v in key) for key in table.index],
                                            names=names)
    return table


def caption(summary: pd.DataFrame, labels: dict[str, str], metric: str) -> str:
    title, _, lower = TABLES[metric]
    seeds = int(summary["seeds"].max()) if not summary.empty else 0
    feats = "; ".join(f"{k} = {labels.get(k) or k}" for k in dict.fromkeys(summary["features"]))
    return (f"{title} ({'lower' if lower else 'higher'} is better), mean ± std over up to {seeds} seed(s); "
            f"best per row in bold. Features: {feats}.")


def _latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("#", r"\#").replace("&", r"\&")


def write_tables(summary: pd.DataFrame, axes: Sequence[str], labels: dict[str, str], out_dir: Path,
                 setting: str) -> dict[str, str]:
    """The markdown and LaTeX tables per metric; returns the markdown texts."""
    texts = {}
    lead = len(row_columns(axes))
    for metric in TABLES:
        md = paper_table(summary, metric, axes)
        if md.empty:
            continue
        cap = caption(summary[summary[f"{metric}_n"] > 0], labels, metric) + f" Setting: {setting}."
        texts[metric] = f"{cap}\n\n" + md.reset_index().to_markdown(index=False) + "\n"
        (out_dir / f"{metric}.md").write_text(texts[metric])
        tex = paper_table(summary, metric, axes, latex=True).reset_index()
        tex.columns = [_latex_escape(str(c)) for c in tex.columns]
        tex.iloc[:, :lead] = tex.iloc[:, :lead].astype(str).map(_latex_escape)
        body = tex.to_latex(index=False, escape=False, caption=_latex_escape(cap).replace("±", r"$\pm$"),
                            label=f"tab:{metric}", column_format="l" * lead + "r" * (len(tex.columns) - lead))
        (out_dir / f"{metric}.tex").write_text(body)
    return texts


def _grid(record_dir: Path, n: int = 64) -> torch.Tensor | None:
    try:
        images = torch.from_numpy(store.load_samples(record_dir)[:n])
    except (OSError, KeyError):
        return None
    return make_grid(images.float() / 255.0, nrow=int(np.ceil(np.sqrt(len(images)))), padding=2, pad_value=1.0)


def draw_sample_grids(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per (data set, cell): one grid PNG per objective and one figure with them side by side."""
    written = []
    finished = df[df["status"].isin(["ok", "diverged"])].sort_values("seed", kind="stable")
    entries = list(dict.fromkeys(df["entry"]))
    for (dset, cell), g in finished.groupby(["dataset_dir", "cell"], sort=False):
        grids = {}
        for e in [e for e in entries if e in set(g["entry"])]:
            first = g[g["entry"] == e].iloc[0]
            grid = _grid(Path(first["path"]))
            if grid is None:
                continue
            grids[first["label"]] = grid
            path = out_dir / f"samples_{dset}_{cell}_{first['slug']}.png"
            save_image(grid, path)
            written.append(path)
        if grids:
            fig, axs = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.6), squeeze=False)
            for ax, (label, grid) in zip(axs[0], grids.items()):
                ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
                ax.set_title(label)
                ax.set_axis_off()
            fig.suptitle(f"{dset}, {cell}")
            fig.tight_layout()
            path = out_dir / f"samples_{dset}_{cell}.png"
            written.append(save_figure(fig, path))
    return written


def write_report(records: list[store.Record], out_dir: Path, figures: bool = True) -> str:
    """The tables (and sample grids) of one setting's records, into ``out_dir``; returns markdown."""
    df = load(records)
    axes = list(records[0].axes)
    tables, figs = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["path"]).to_csv(tables / "records.csv", index=False)
    summary = summarise(df, axes)
    summary.to_csv(tables / "summary.csv", index=False)
    labels = dict(zip(df["features"], df["features_label"]))
    setting = f"{records[0].setting} ({describe_setting(records[0])})"
    texts = write_tables(summary, axes, labels, tables, setting)
    if figures:
        figs.mkdir(parents=True, exist_ok=True)
        draw_sample_grids(df, figs)
        draw_curves(records, figs)  # metrics over steps, where runs have them
    failed = df[df["status"] != "ok"]
    notes = "".join(f"\n- {p}: {s} ({r})" for p, s, r in zip(failed["path"], failed["status"], failed["reason"]))
    body = "\n".join(texts.values()) or "no finished runs with metrics yet\n"
    return body + (f"\nruns without metrics:{notes}\n" if notes else "") + f"\ntables: {tables}\nfigures: {figs}"


def report(root: Path, out: Path | None = None, figures: bool = True, prog: str = "analysis.fid_table") -> str | None:
    """Tables and sample grids for every setting of image records below ``root``, each beside
    its records or under ``out/<setting>``; returns markdown (None when there are none)."""
    records = read_sweep(root, "fid", prog)
    if not records:
        return None
    return "\n\n".join(write_report(group, Path(out) / setting if out else store.setting_dir_of(group[0]), figures)
                        for setting, group in by_setting(records))


def main(argv: list[str] | None = None) -> int:
    return report_command("python -m analysis.fid_table", "Rebuild the FID/KID/IS tables and sample grids from "
                          "stored records, per setting.", report, argv)


if __name__ == "__main__":
    sys.exit(main())
