"""The image-quality table and sample grids, rebuilt from stored `sweeps.fid` records alone.

    python -m analysis.fid_table results/          # or results/fid

Layout of Table 1 of the paper: one row per (architecture, data set, feature extractor),
one column per objective, each cell ``mean ± std`` over seeds (std with ddof 1; a cell
with fewer finished seeds than the row's most says so, e.g. ``(2/3)``); the best cell per
row is bold (lowest FID/KID, highest IS). Written under ``<fid dir>/tables``:

- ``records.csv``: one row per run (config, status, metrics, extractor);
- ``summary.csv``: one row per (arch, data set, extractor, objective) with the numbers;
- ``fid.md``/``fid.tex``, ``kid.md``/``kid.tex`` (KID x 10^3), ``isc.md``/``isc.tex``
  (only where the Inception/classifier score is meaningful), each with a caption that
  names the feature extractor behind every row.

And under ``figures``: ``samples_<dataset>_<arch>_<model>.png`` (the first 64 samples of the
lowest finished seed) and ``samples_<dataset>_<arch>.png`` (objectives side by side).
"""
from __future__ import annotations

import argparse
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

from analysis.fid import SAMPLES_FILE  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from sweeps.records import iter_records, read_record  # noqa: E402

ROW = ["arch", "dataset", "features"]
ARCH_ORDER = {"dcgan": 0, "weaker": 1, "mlp": 2}
TABLES = {  # metric: (title, scale, lower is better)
    "fid": ("FID", 1.0, True),
    "kid": ("KID x 10^3", 1e3, True),
    "isc": ("IS", 1.0, False),
}
PRETTY = {"gan": "GAN", "mmdnet": "MMD-net", "mmdgan": "MMD-GAN", "gram": "GRAM-net",
          "dcgan": "DCGAN", "weaker": "Weaker", "mlp": "MLP"}


def model_order(found: Sequence[str]) -> list[str]:
    """Objectives in registry order (gan, mmdnet, mmdgan, gram, then plugins), unknown ones last."""
    import objectives
    found = list(dict.fromkeys(found))
    known = [m for m in objectives.names() if m in found]
    return known + [m for m in found if m not in known]


def load_records(root: Path) -> pd.DataFrame:
    """One row per complete record below ``root`` (``.tmp-*`` partial writes skipped)."""
    rows = []
    for path in iter_records(root):
        rec = read_record(path)
        cfg = rec["config"]
        rows.append({"dataset": cfg["dataset"], "dataset_dir": path.parents[2].name, "arch": cfg["arch"],
                     "model": cfg["model"], "seed": rec["seed"], "status": rec["status"],
                     "reason": rec.get("reason"), "features": rec.get("features_key") or "none",
                     "features_label": rec.get("features"), "steps": cfg["steps"], "batch": cfg["batch"],
                     "n_samples": cfg["n_samples"], "wall_time_s": rec.get("wall_time_s"),
                     **(rec.get("metrics") or {}), "path": str(path)})
    return pd.DataFrame(rows)


def _row_key(index: tuple) -> tuple:
    arch, dataset, features = index
    return ARCH_ORDER.get(arch, 9), arch, dataset, features


def summarise(df: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (arch, data set, extractor, objective): seeds, finished seeds, mean/std of each metric."""
    ok = df[df["status"] == "ok"]
    out = []
    for key, g in df.groupby(ROW + ["model"], sort=False):
        good = ok.loc[ok.index.intersection(g.index)]
        row = dict(zip(ROW + ["model"], key), seeds=len(g), finished=len(good))
        for metric in TABLES:
            vals = good[metric].astype(float).dropna() if metric in good else pd.Series(dtype=float)
            row[f"{metric}_mean"] = vals.mean() if len(vals) else np.nan
            row[f"{metric}_std"] = vals.std() if len(vals) > 1 else np.nan
            row[f"{metric}_n"] = len(vals)
        out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    order = list(models or []) + [m for m in dict.fromkeys(summary["model"]) if m not in (models or [])]
    summary["_r"] = [_row_key(tuple(r)) for r in summary[ROW].itertuples(index=False)]
    summary["_m"] = summary["model"].map(order.index)
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


def paper_table(summary: pd.DataFrame, metric: str, latex: bool = False) -> pd.DataFrame:
    """Rows (Arch, Dataset, Features), columns objectives, ``mean ± std`` strings, best in bold."""
    _, scale, lower = TABLES[metric]
    rows = {}
    for key, g in summary.groupby(ROW, sort=False):
        means = g[f"{metric}_mean"].to_numpy(dtype=float)
        if not np.isfinite(means).any():
            continue
        best = np.nanargmin(means) if lower else np.nanargmax(means)
        most = int(g["seeds"].max())
        rows[key] = {PRETTY.get(r.model, r.model): _cell(r[f"{metric}_mean"], r[f"{metric}_std"],
                                                         int(r[f"{metric}_n"]), most, scale, i == best, latex)
                     for i, (_, r) in enumerate(g.iterrows())}
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    table.index = pd.MultiIndex.from_tuples([(PRETTY.get(a, a), d, f) for a, d, f in table.index],
                                            names=["Arch", "Dataset", "Features"])
    return table


def caption(summary: pd.DataFrame, labels: dict[str, str], metric: str) -> str:
    title, _, lower = TABLES[metric]
    seeds = int(summary["seeds"].max()) if not summary.empty else 0
    feats = "; ".join(f"{k} = {labels.get(k) or k}" for k in dict.fromkeys(summary["features"]))
    return (f"{title} ({'lower' if lower else 'higher'} is better), mean ± std over up to {seeds} seed(s); "
            f"best per row in bold. Features: {feats}.")


def _latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("#", r"\#").replace("&", r"\&")


def write_tables(summary: pd.DataFrame, labels: dict[str, str], out_dir: Path) -> dict[str, str]:
    """The markdown and LaTeX tables per metric; returns the markdown texts."""
    texts = {}
    for metric in TABLES:
        md = paper_table(summary, metric)
        if md.empty:
            continue
        cap = caption(summary[summary[f"{metric}_n"] > 0], labels, metric)
        texts[metric] = f"{cap}\n\n" + md.reset_index().to_markdown(index=False) + "\n"
        (out_dir / f"{metric}.md").write_text(texts[metric])
        tex = paper_table(summary, metric, latex=True)
        tex = tex.reset_index()
        tex.columns = [_latex_escape(str(c)) for c in tex.columns]
        tex.iloc[:, :3] = tex.iloc[:, :3].map(_latex_escape)
        body = tex.to_latex(index=False, escape=False, caption=_latex_escape(cap).replace("±", r"$\pm$"),
                            label=f"tab:{metric}", column_format="lll" + "r" * (len(tex.columns) - 3))
        (out_dir / f"{metric}.tex").write_text(body)
    return texts


def _grid(path: Path, n: int = 64) -> torch.Tensor | None:
    try:
        with np.load(Path(path) / SAMPLES_FILE) as f:
            images = torch.from_numpy(f["images"][:n])
    except (OSError, KeyError):
        return None
    return make_grid(images.float() / 255.0, nrow=int(np.ceil(np.sqrt(len(images)))), padding=2, pad_value=1.0)


def draw_sample_grids(df: pd.DataFrame, models: Sequence[str], out_dir: Path) -> list[Path]:
    """Per (data set, arch): one grid PNG per objective and one figure with them side by side."""
    written = []
    finished = df[df["status"].isin(["ok", "diverged"])].sort_values("seed")
    for (dset, arch), g in finished.groupby(["dataset_dir", "arch"], sort=False):
        grids = {}
        for m in [m for m in models if m in set(g["model"])]:
            grid = _grid(g[g["model"] == m].iloc[0]["path"])
            if grid is None:
                continue
            grids[m] = grid
            path = out_dir / f"samples_{dset}_{arch}_{m}.png"
            save_image(grid, path)
            written.append(path)
        if grids:
            fig, axs = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.6), squeeze=False)
            for ax, (m, grid) in zip(axs[0], grids.items()):
                ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
                ax.set_title(PRETTY.get(m, m))
                ax.set_axis_off()
            fig.suptitle(f"{dset}, {PRETTY.get(arch, arch)}")
            fig.tight_layout()
            path = out_dir / f"samples_{dset}_{arch}.png"
            written.append(save_figure(fig, path))
    return written


def report(fid_dir: Path, models: Sequence[str] | None = None, figures: bool = True) -> str:
    """Write the tables (and sample grids) for one ``<out>/fid`` directory; return markdown."""
    fid_dir = Path(fid_dir)
    df = load_records(fid_dir)
    if df.empty:
        return f"no records below {fid_dir}"
    if models:
        df = df[df["model"].isin(models)]
    models = list(models or model_order(df["model"]))
    tables, figs = fid_dir / "tables", fid_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["path"]).to_csv(tables / "records.csv", index=False)
    summary = summarise(df, models)
    summary.to_csv(tables / "summary.csv", index=False)
    labels = dict(zip(df["features"], df["features_label"]))
    texts = write_tables(summary, labels, tables)
    if figures:
        figs.mkdir(parents=True, exist_ok=True)
        draw_sample_grids(df, models, figs)
    failed = df[df["status"] != "ok"]
    notes = "".join(f"\n- {Path(p).relative_to(fid_dir)}: {s} ({r})"
                    for p, s, r in zip(failed["path"], failed["status"], failed["reason"]))
    body = "\n".join(texts.values()) or "no finished runs with metrics yet\n"
    return body + (f"\nruns without metrics:{notes}\n" if notes else "") + f"\ntables: {tables}\nfigures: {figs}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.fid_table",
                                description="Rebuild the FID/KID/IS tables and sample grids from stored records.")
    p.add_argument("results", type=Path, help="results root (holding fid/) or the fid/ directory itself")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    args = p.parse_args(argv)
    root = args.results / "fid" if (args.results / "fid").is_dir() else args.results
    if not root.is_dir() or load_records(root).empty:
        print(f"{p.prog}: error: no sweeps.fid records below {args.results}", file=sys.stderr)
        return 2
    print(report(root, figures=not args.no_figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
