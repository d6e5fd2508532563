"""A reproduction report: each of the paper's claims beside our measurements, with intervals
and a verdict, in one document.

    python -m analysis.report results/                       # -> results/report/report.{md,html}
    python -m analysis.report results/ --out paper-report --format png,pdf

From every record below RESULTS it writes ``report.md`` (figures as files beside it, under
``stability/`` and ``fid/``) and ``report.html`` (the same, figures embedded: one file to
send). Sections: the verdicts (`analysis.claims`: the paper's claim, the rule that decides
it, our measurement with its 95% interval, reproduced / not reproduced / not run), how the
records were made (commit and uncommitted changes, versions, devices, commands, every
setting and hyperparameter), which runs are missing, failed or unreadable, per setting
the figures and tables of `analysis.stability` and `analysis.fid_table` (metrics over
steps where runs were trained with ``--eval-every``, `analysis.curves`), and last an
appendix with the long per-cell tables. Captions say settings and cells in words; the
setting's directory name is in the section heading. Figures are written in every
``--format``; the document shows the PNGs (drawn whatever ``--format`` says).
"""
from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import store
from analysis import fid_table, stability
from analysis.claims import (
    NOT_REPRODUCED,
    NOT_RUN,
    PAPER_GRID,
    PAPER_RING,
    REPRODUCED,
    Verdict,
    failure_table,
    fid_verdicts,
    noise_dim_finding,
    ring_basis,
    ring_verdicts,
)
from analysis.curves import figure_stem
from analysis.document import Document, Figure
from analysis.frames import (
    SWEEPS,
    by_setting,
    by_setting_and_dataset,
    cell_words,
    dataset_words,
    describe_setting,
    frame,
    group_dir,
    levels,
    scan,
)
from analysis.heatmaps import NOTE, drawn, modes_in, scale_words
from analysis.stats import BOLD_RULE
from cli import Parser, clean_exit, fail
from cli.options import add_options
from core import experiments
from core.files import atomic_path, ensure_dir
from metrics.success import SUCCESS_RULE

TITLE = "Reproduction report: Generative Ratio Matching Networks (Srivastava et al., ICLR 2020)"


def _png(path: Path) -> Path:
    return path.with_name(path.name + ".png")


def provenance(records: Sequence[store.Record]) -> list[str]:
    """How the records were made: code, versions, machines, commands, time span."""
    prov = [r.provenance for r in records]
    commits = Counter((p.get("git_commit") or "unknown", p.get("git_dirty")) for p in prov)
    versions = Counter(tuple(sorted((k, v) for k, v in (p.get("versions") or {}).items() if v)) for p in prov)
    created = sorted(p["created"] for p in prov if p.get("created"))
    dirty = {True: "with uncommitted changes", False: "clean", None: "unknown"}
    lines = [f"code: {', '.join(f'`{c[:12]}` ({dirty[d]}): {n} runs' for (c, d), n in commits.most_common())}"]
    if any(d for (_, d) in commits):
        lines.append("**some runs were made from a working tree with uncommitted changes**: their code is not "
                     "exactly the commit named")
    lines += [f"versions ({n} runs): " + ", ".join(f"{k} {v}" for k, v in vs) for vs, n in versions.most_common()]
    lines.append("python: " + ", ".join(sorted({str(p.get("python")) for p in prov})) + "; platform: "
                 + ", ".join(sorted({str(p.get("platform")) for p in prov})))
    lines.append("devices: " + ", ".join(f"{d} ({n} runs)" for d, n in
                                         Counter(str(r.run.get("device")) for r in records).most_common()))
    if created:
        lines.append(f"made between {created[0]} and {created[-1]}")
    commands = Counter(" ".join(map(str, p.get("command") or [])) for p in prov)
    lines += [f"command ({n} runs): `{c}`" for c, n in commands.most_common(5)]
    return lines


def experiment_files(records: Sequence[store.Record]) -> list[str]:
    """Per setting, the experiment files its records came from and the options given over them
    (what each sweep saved beside its records: `core.experiments.save_resolved`)."""
    lines = []
    for setting in dict.fromkeys(store.setting_dir_of(r) for r in records if r.sweep in SWEEPS):
        for exp in experiments.resolved_in(setting):
            first, *bases = exp.get("files") or ["(none)"]
            given = ", ".join(f"{k}={v}" for k, v in sorted((exp.get("overrides") or {}).items()))
            lines.append(f"**{setting.parent.name} {setting.name}**: `{first}`"
                         + (f" (over {', '.join(Path(b).name for b in bases)})" if bases else "")
                         + (f"; given on the command line: {given}" if given else ""))
    return lines


def settings(records: Sequence[store.Record]) -> list[str]:
    """Every setting and, per objective entry, its hyperparameters outside the grid."""
    lines = []
    for setting, group in by_setting(list(records)):
        lines.append(f"**{group[0].sweep} {setting}**: {describe_setting(group[0])}; data "
                     + ", ".join(dict.fromkeys(r.config["dataset"] for r in group)))
        seen = {}
        for r in group:
            seen.setdefault(r.entry, r)
        for entry, r in seen.items():
            hp = {k: v for k, v in r.config["hp"].items() if k not in r.axes}
            lines.append(f"{r.display_name} (`{entry}`): " + ", ".join(f"{k}={v}" for k, v in sorted(hp.items())))
    return lines


CURVES = ("each objective's mean over seeds, shaded from the lowest to the highest seed (scored on fewer samples than "
          "the tables).")


def missing_runs(df: pd.DataFrame, axes: Sequence[str], core: Mapping[str, Sequence[Any]] | None = None) -> list[str]:
    """Runs expected but absent, and runs that crashed or diverged. Expected: every objective x
    seed seen in this group x cell of the grid; with ``core`` (the paper's grid, for ring
    records) an axis value outside it (an extension, such as noise dimension 3 on ring3d) is
    expected only of the objectives that ran it."""
    lines = []
    seeds = sorted(df["seed"].unique())
    for _, g in df.groupby("entry", sort=False):
        cells = list(itertools.product(*([v for v in levels(df, a)
                                          if core is None or v in core.get(a, ()) or (g[a] == v).any()]
                                         for a in axes)))
        have = {(*(row[a] for a in axes), row["seed"]) for _, row in g.iterrows()}
        absent = {s: [c for c in cells if (*c, s) not in have] for s in seeds}
        label, count = g["label"].iloc[0], sum(map(len, absent.values()))
        whole = [s for s, c in absent.items() if len(c) == len(cells)]
        parts = [f"seed(s) {', '.join(map(str, whole))} (every cell)"] if whole else []
        parts += [f"seed {s}: " + "; ".join(cell_words(dict(zip(axes, c))) for c in absent[s])
                  for s in seeds if absent[s] and s not in whole]
        if count:
            lines.append(f"{label}: missing {count} run(s): " + "; ".join(parts))
        for _, row in g[g["status"] != "ok"].iterrows():
            lines.append(f"{label}: {cell_words({a: row[a] for a in axes}) or 'the one cell'}, seed {row['seed']} "
                         f"{row['status']}"
                         + (f" ({row['reason']})" if row.get("reason") else ""))
    return lines


def paper_cells_not_run(df: pd.DataFrame) -> list[str]:
    """Ring records: the cells of the paper's grid that no run of ``df`` has, in one line."""
    if not set(PAPER_GRID) <= set(df.columns):
        return []
    not_run = [c for c in itertools.product(*PAPER_GRID.values())
               if not np.logical_and.reduce([df[a] == v for a, v in zip(PAPER_GRID, c)]).any()]
    return [f"cells of the paper's grid not run here ({len(not_run)}): "
            + "; ".join(cell_words(dict(zip(PAPER_GRID, c))) for c in not_run)] if not_run else []


def default_cell(df: pd.DataFrame, axes: Sequence[str]) -> str:
    """The cell whose axes take the harness's defaults (noise dimension 4, width 100), else the first."""
    from engine import field_default  # the run configuration's defaults: only where a report is drawn
    try:
        want = {a: field_default(a) for a in axes}
    except (KeyError, AttributeError, TypeError):
        want = {}
    hit = df
    for a, v in want.items():
        hit = hit[hit[a] == v]
    return (hit if len(hit) else df)["cell"].iloc[0]


def stability_section(doc: Document, appendix: Document, runs: list[store.Record], out: Path,
                      formats: Sequence[str]) -> tuple[list[Verdict], list[str]]:
    """Figures and tables of one (setting, data set) of stability records into ``doc``, its
    per-cell table into ``appendix``; returns its verdicts and its missing or failed runs."""
    df = frame(runs)
    axes = stability.grid_axes(df, runs)
    dataset, setting = runs[0].config["dataset"], runs[0].setting
    target = group_dir(runs, out / "stability")
    stability.write_report(runs, target, True, formats, out)
    figs = target / "figures"
    seed = int(df["seed"].min())
    doc.heading(f"Ring stability: {dataset_words(dataset)}, setting `{setting}`", 2)
    doc.paragraph(f"{describe_setting(runs[0])}. {len(df)} runs; seeds "
                  f"{', '.join(map(str, sorted(df['seed'].unique())))}. The paper: {PAPER_RING}.")
    several = df["entry"].nunique() > 1
    grid = figs / ("samples_all" if several else f"samples_{df['slug'].iloc[0]}")
    doc.figure(_png(grid), f"Samples of seed {seed} (orange) over the data (blue), one panel per cell "
                           "(the paper's Fig. 2 and 7 layout). A red frame marks a run that fails the success rule "
                           f"({SUCCESS_RULE}); 'k% off-panel': samples outside the drawn limits.")
    for metric in drawn():  # in catalog order, each captioned by its own description
        path = _png(figs / f"heatmap_{metric.key}")
        if path.exists():
            doc.figure(path, f"{metric.about}. Fixed colour scale: {scale_words(metric, modes_in(df))}. {NOTE}")
    cell = default_cell(df, axes)
    trace = _png(figs / "traces" / f"traces_{cell}")
    if trace.exists():
        doc.figure(trace, f"Training traces at {words_of_cell(df, cell, runs[0].axes)}: each objective's generator "
                          "loss and its other player's objective; lines the median over seeds, bands their range.")
    for cell in dict.fromkeys(df["cell"]):  # metrics over steps, where the runs were trained with --eval-every
        curves = _png(figs / figure_stem(store.dataset_dir(dataset), cell))
        if curves.exists():
            doc.figure(curves, f"Metrics over generator steps at {words_of_cell(df, cell, runs[0].axes)}: {CURVES}")
    shown, _ = stability.summarise(df, axes)
    doc.table(shown, f"Per objective over all cells and seeds: success rate with its 95% Wilson interval; metrics "
                     f"mean ± std over runs. {SUCCESS_RULE}.")
    doc.paragraph(f"Per cell: in the appendix. Tables as Markdown, LaTeX and CSV: `{target / 'tables'}`; "
                  f"training traces of every cell: `{figs / 'traces'}`.")
    shown, _ = stability.per_cell(df, axes)
    appendix.table(shown, f"Ring stability per cell, {dataset_words(dataset)} ({describe_setting(runs[0])}): mean "
                          "± std over seeds; (k/n): only k of n seeds have a value.")
    problems = missing_runs(df, axes, PAPER_GRID) + paper_cells_not_run(df)
    return ring_verdicts(df, f"{dataset} ({setting})", ring_basis(df, list(runs[0].axes)), list(runs[0].axes)), problems


def words_of_cell(df: pd.DataFrame, cell: str, axes: Sequence[str]) -> str:
    """A cell of ``df`` (rows of `analysis.frames.frame`) in words, from its axes' values."""
    row = df[df["cell"] == cell].iloc[0]
    return cell_words({a: row[a] for a in axes}) or "the one cell"


def fid_section(doc: Document, group: list[store.Record], out: Path, formats: Sequence[str]
                ) -> tuple[list[Verdict], list[str]]:
    """Tables and sample grids of one setting of image records; returns its verdicts and its missing or failed runs."""
    setting = group[0].setting
    target = out / "fid" / setting
    for folder in ("tables", "figures"):  # made here below out, never through a symbolic link
        ensure_dir(out, target / folder)
    fid_table.write_report(group, target, True, formats)
    doc.heading(f"Image quality: setting `{setting}`", 2)
    doc.paragraph(describe_setting(group[0]) + ".")
    df = fid_table.load(group)
    _, tables = fid_table.captioned_tables(df, list(group[0].axes), setting)
    for table, cap in tables.values():
        doc.table(table, cap)
    for dataset, cell in df[["dataset_dir", "cell"]].drop_duplicates().itertuples(index=False):
        png = target / "figures" / f"samples_{dataset}_{cell}.png"
        if png.exists():
            doc.figure(png, f"Samples of each objective's lowest finished seed: {dataset_words(dataset)}, "
                            f"{words_of_cell(df, cell, group[0].axes)}.")
        curves = _png(target / "figures" / figure_stem(dataset, cell))
        if curves.exists():
            doc.figure(curves, f"Metrics over generator steps, {dataset_words(dataset)}, "
                               f"{words_of_cell(df, cell, group[0].axes)}: {CURVES}")
    problems = missing_runs(df, list(group[0].axes))
    return fid_verdicts(df, setting, list(group[0].axes)), problems


def claims_findings(doc: Document, ring: list[store.Record]) -> None:
    """Per (setting, data set) of stability records: the runs of each failure type per
    objective, and what the records show beyond the paper's claims (`analysis.claims`)."""
    groups = [(runs, frame(runs)) for runs in by_setting_and_dataset(ring)]
    if not groups:
        return
    doc.heading("Failure types", 3)
    for runs, df in groups:
        doc.table(failure_table(df), f"{dataset_words(runs[0].config['dataset'])} ({describe_setting(runs[0])}): runs "
                                     "per failure type (metrics.ring: collapse, missed-modes, off-modes, too-wide, "
                                     "too-tight; crashed and diverged runs under their status).")
    import data  # the data's dimension, for the noise-dimension finding
    findings = [noise_dim_finding(df, data.get(runs[0].config["dataset"]).x_shape[0],
                                  f"{runs[0].config['dataset']}, setting {runs[0].setting}") for runs, df in groups]
    doc.heading("Findings beyond the paper's claims", 3)
    found = [f for f in findings if f]
    if not found:
        doc.paragraph("none: no records with noise dimensions below and at or above the data's dimension.")
    for finding in found:
        doc.paragraph(finding.text)
        doc.table(finding.table, "Per objective and noise dimension, over every seed and width: successful runs "
                                 "(95% Wilson interval), successful seeds per generator width, median MMD², median "
                                 "spread along the ring (1 = the data's) and the runs per failure type.")


def verdict_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": v.claim, "scope": v.scope, "verdict": f"**{v.verdict}**", "measured": v.measured}
                         for v in verdicts])


def build(root: Path, out: Path, formats: Sequence[str], prog: str) -> tuple[Document, list[Verdict]] | None:
    """The report of every record below ``root``, its figures and tables written under
    ``out``; None when there are no sweep records."""
    records, problems = scan(root, prog)
    records = [r for r in records if r.sweep in SWEEPS]
    if not records:
        return None
    formats = tuple(dict.fromkeys([*formats, "png"]))  # the document shows PNGs
    doc = Document(TITLE)
    body, appendix = Document(TITLE), Document(TITLE)
    verdicts, gaps = [], []
    ring = [r for r in records if r.sweep == "stability"]
    for runs in by_setting_and_dataset(ring):
        found, missing = stability_section(body, appendix, runs, out, formats)
        verdicts += found
        gaps += [f"{runs[0].config['dataset']}, {runs[0].setting}: {m}" for m in missing]
    if not ring:
        verdicts += ring_verdicts(None, "no stability records")
    images = [r for r in records if r.sweep == "fid"]
    for setting, group in by_setting(images):
        found, missing = fid_section(body, group, out, formats)
        verdicts += found
        gaps += [f"{setting}: {m}" for m in missing]
    if not images:
        verdicts += fid_verdicts(None)
    doc.paragraph(f"Made {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} from the {len(records)} "
                  f"records below `{root}` by `python -m analysis.report`.")
    doc.heading("Verdicts", 2)
    doc.paragraph("Each claim is decided by the rule in the next section, written down before any result was "
                  "looked at. Rates are given as count, rate and 95% Wilson interval; a claim whose records are "
                  "missing is 'not run'. 'Reproduced' and 'not reproduced' are read only at the paper's setting "
                  f"({PAPER_RING}); records away from it read 'indicative only' with the reasons, records of another "
                  "data set 'extension'.")
    doc.table(verdict_table(verdicts))
    doc.heading("The claims and their rules", 2)
    for claim in dict.fromkeys(v.claim for v in verdicts):
        first = next(v for v in verdicts if v.claim == claim)
        doc.heading(claim, 3)
        doc.bullets([f"paper: {first.paper}", f"rule: {first.criterion}"]
                    + [f"{v.scope}" + (f", {v.basis}" if v.basis else "") + f": {v.measured} → **{v.verdict}**"
                       for v in verdicts if v.claim == claim])
    claims_findings(doc, ring)
    doc.heading("How the records were made", 2)
    doc.bullets(provenance(records))
    doc.heading("Experiment files", 3)
    doc.bullets(experiment_files(records) or ["none saved beside these records (made before experiment files)"])
    doc.heading("Settings and hyperparameters", 3)
    doc.bullets(settings(records))
    doc.heading("Missing, failed and unreadable runs", 2)
    unreadable = [f"unreadable, skipped: {p} ({why})" for p, why in problems]
    doc.bullets(gaps + unreadable)
    if not gaps and not unreadable:
        doc.paragraph("none: every objective has every cell and seed of its grid, and every run finished.")
    doc.paragraph(f"Statistics: std is the sample standard deviation (ddof 1) over seeds; intervals are 95% Wilson "
                  f"score intervals; in the FID tables, {BOLD_RULE}.")
    doc.blocks += body.blocks
    if appendix.blocks:
        doc.heading("Appendix: per-cell tables", 2)
        doc.blocks += appendix.blocks
    return doc, verdicts


def publish(doc: Document, out: Path, target: Path) -> int:
    """``doc`` (built under ``out``) into ``target`` as report.md and only the PNG figures it
    shows, at the same relative paths, each re-encoded as a 256-colour palette PNG (plots have
    few colours; a third of the bytes); returns the bytes written. Nothing else is copied."""
    from PIL import Image  # pillow: only where a report is published
    size = 0
    for fig in (b for b in doc.blocks if isinstance(b, Figure)):
        dest = target / fig.path.relative_to(out)
        with Image.open(fig.path) as im:
            palette = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        with atomic_path(dest, root=target) as tmp:
            palette.save(tmp, "PNG", optimize=True)
        size += dest.stat().st_size
    text = doc.markdown(out)
    store.write_text(target / "report.md", text, root=target)
    return size + len(text.encode())


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    add_options(p, "results", "out", "format", "publish", shown={"out": "RESULTS/report"},
                notes={"out": "the folder of report.md, report.html and their figures"})
    args = p.parse_args(argv)
    if not args.results.exists():
        fail(p.prog, f"{args.results} does not exist")
    out = args.out or args.results / "report"
    with clean_exit(p.prog):
        try:
            for folder in (out, args.publish):  # refused before anything is drawn
                if folder is not None:
                    store.ensure_writable(folder)
            built = build(args.results, out, args.format, p.prog)
            if built is None:
                fail(p.prog, f"no stability or fid records below {args.results}")
            doc, verdicts = built
            store.write_text(out / "report.md", doc.markdown(out), root=out)
            store.write_text(out / "report.html", doc.html(), root=out)
            if args.publish:
                size = publish(doc, out, args.publish)
        except PermissionError as err:  # a file, a read-only folder, a symbolic link out of OUT
            fail(p.prog, str(err))
    print(verdict_table(verdicts)[["claim", "scope", "verdict"]].to_markdown(index=False))
    print(f"\nreport: {out / 'report.md'}\n        {out / 'report.html'}")
    if args.publish:
        print(f"published: {args.publish / 'report.md'} and its PNG figures, {size / 1e6:.1f} MB in all")
    counts = Counter(v.verdict if v.verdict in (REPRODUCED, NOT_REPRODUCED, NOT_RUN) else "indicative or extension"
                     for v in verdicts)
    print(", ".join(f"{counts[k]} {k}" for k in (REPRODUCED, NOT_REPRODUCED, "indicative or extension", NOT_RUN)),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
