"""The metric catalog (`metrics.catalog`) is the one description of every metric: a metric
registered there reaches every heatmap, table, curve, caption and progress line with no
other edit; ``mmd2`` is on one scale in every figure; and no module of ``analysis/`` or
``sweeps/`` keeps a table keyed by metric names (checked by reading their code)."""
import ast
import json
import re
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
import torch

import data
import objectives
import store
from analysis import curves, fid_table, heatmaps, report, stability
from engine import RunConfig
from metrics import catalog
from metrics.catalog import Metric
from metrics.images import METRIC_KEYS
from metrics.ring import toy_metrics
from sweeps.parallel import describe

ROOT = Path(__file__).resolve().parents[2]
MADE_UP = Metric("sharpness", "sharpness of the fit", "sharp", "Sharpness: a metric made up for this test", "high",
                 limits=lambda n: (0.0, 2.0), progress=True)  # data=None: toy and image runs alike


@pytest.fixture
def made_up(monkeypatch):
    """`MADE_UP` registered in a copy of the catalog, which the test's end restores."""
    monkeypatch.setattr(catalog, "REGISTRY", dict(catalog.REGISTRY))
    return catalog.register(MADE_UP)


def test_every_metric_the_harness_computes_is_described():
    ds = data.get("ring2d")
    samples = ds.sample(400, torch.Generator().manual_seed(0)).numpy()
    computed = set(toy_metrics(samples, ds, 0)) | set(METRIC_KEYS.values()) | {"wall_time_s"}
    assert computed <= set(catalog.REGISTRY), computed - set(catalog.REGISTRY)
    assert {m.key for m in catalog.quality("image")} == {"fid", "kid", "isc", "precision", "recall"}
    with pytest.raises(ValueError, match="already registered"):
        catalog.register(catalog.get("mmd2"))


def test_records_get_plain_descriptions_and_progress_lines_read_the_catalog(made_up):
    metrics = {"modes_covered_strict": 7, "n_modes": 8, "hq_fraction": 0.912, "spread": 1.234, "success": False,
               "mmd2": 0.01, "sharpness": 1.5, "not_catalogued": 3}
    described = catalog.describe(metrics)
    assert set(described) == set(metrics) - {"not_catalogued"}
    assert json.loads(json.dumps(described)) == described  # plain data
    assert described["modes_covered_strict"]["limits"] == [0, 8]
    assert described["mmd2"]["scale"] == "log" and described["spread"]["band"] == pytest.approx([2 ** -0.5, 2 ** 0.5])
    line = describe({"status": "ok", "metrics": metrics, "reason": None})
    assert line == "ok, not successful, modes (strict) 7/8, hq fraction 0.912, spread 1.23, sharp 1.5"
    assert describe({"status": "crashed", "metrics": {}, "reason": "boom"}) == "crashed (boom)"


def write_ring_records(root: Path, seeds=(0, 1)) -> list[store.Record]:
    """Stability records of GRAM-net and GAN on a 2 x 2 grid: true ring samples scored by the
    real metrics plus ``sharpness``, and a curve of it over steps."""
    ds = data.get("ring2d")
    written = []
    for model in ("gram", "gan"):
        for nd, w, seed in [(nd, w, s) for nd in (2, 8) for w in (20, 100) for s in seeds]:
            cfg = RunConfig(model=model, dataset="ring2d", seed=seed, steps=20, batch=64, n_samples=400,
                            noise_dim=nd, width=w)
            axes = {"noise_dim": nd, "width": w}
            samples = ds.sample(400, torch.Generator().manual_seed(seed)).numpy()
            metrics = {**toy_metrics(samples, ds, seed), "sharpness": 0.5 + seed}
            trace = pd.DataFrame({"loss_g": np.linspace(1, 0.1, 20), "pd": np.linspace(5, 50, 20),
                                  "loss_d": np.linspace(1.4, 1.2, 20)})
            curve = pd.DataFrame({"step": [0, 10, 20], "sharpness": [0.1, 0.4, metrics["sharpness"]],
                                  "mmd2": [0.5, -1e-5, 0.002], "n_modes": 8})
            record = store.Record(config=cfg.to_dict(), status="ok", sweep="stability", axes=axes, metrics=metrics,
                                  objective=objectives.get(model).describe(), provenance=store.provenance())
            written.append(store.write(store.sweep_dir(root, "stability", cfg.to_dict(), axes), record,
                                       samples=samples, trace=trace, curves=curve))
    return [store.read(r.path) for r in written]


def test_a_registered_metric_reaches_heatmaps_tables_curves_and_the_report(made_up, tmp_path):
    records = write_ring_records(tmp_path / "results")
    out = tmp_path / "drawn"
    stability.write_report(records, out, True, ("png",))
    assert (out / "figures" / "heatmap_sharpness.png").stat().st_size > 5_000
    per_cell = (out / "tables" / "per_cell.md").read_text()
    assert "sharp" in per_cell.splitlines()[2] and "1.00 ± 0.71" in per_cell  # seeds 0.5 and 1.5
    summary = pd.read_csv(out / "tables" / "summary.csv").set_index("entry")
    assert summary["sharpness_mean"].tolist() == pytest.approx([1.0, 1.0])
    assert (out / "figures" / "over_steps_ring2d_noise_dim=2_width=20.png").exists()
    df = curves.curves_frame(records)
    fig = curves.plot_curves(df[df["cell"] == records[0].row()["cell"]], "one cell")
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert panels[MADE_UP.label].get_lines()[0].get_ydata()[-1] == pytest.approx(1.0)  # mean of seeds
    matplotlib.pyplot.close("all")

    assert report.main([str(tmp_path / "results"), "--out", str(tmp_path / "rep"), "--format", "png"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "heatmap_sharpness.png" in md and f"{MADE_UP.about}. Fixed colour scale: 0 to 2, best 2 at the top" in md
    assert re.search(r"\|\s*sharp\s*\|", md)  # a column of the summary and per-cell tables


def test_a_registered_metric_gets_its_image_table(made_up):
    rows = [{"arch": "dcgan", "dataset": "cifar10", "features": "harness-cnn-1", "features_label": "offline CNN",
             "entry": m, "label": m.upper(), "status": "ok", "seed": s, "fid": 20.0 + s, "sharpness": 1.0 + 0.1 * s}
            for m in ("gram", "gan") for s in range(3)]
    summary, tables = fid_table.captioned_tables(pd.DataFrame(rows), ["arch"], "s")
    table, caption = tables["sharpness"]
    assert table[["GRAM", "GAN"]].iloc[0].tolist() == ["1.10 ± 0.10", "1.10 ± 0.10"]
    assert caption.startswith("Sharp (higher is better)") and set(tables) == {"fid", "sharpness"}


def test_mmd2_is_on_one_log_scale_in_every_figure():
    """The heatmap and the curves draw MMD^2 on the catalog's log scale, negative values
    (the unbiased estimate's) at its floor; the curves used to fall back to a linear axis."""
    mmd2 = catalog.get("mmd2")
    assert mmd2.log and mmd2.limits(8)[0] == 1e-4
    rows = [{"entry": m, "label": m, "model": m, "noise_dim": nd, "width": 20, "seed": 0, "n_modes": 8,
             "cell": f"noise_dim={nd}", "mmd2": -1e-5 if nd == 2 else 0.3} for m in ("gram", "gan") for nd in (2, 8)]
    fig = heatmaps.heatmap_figure(pd.DataFrame(rows), "mmd2", "noise_dim", None, n_modes=8)
    assert isinstance(fig.axes[0].images[0].norm, mcolors.LogNorm)
    assert fig.axes[-1].get_ylabel().startswith(mmd2.label)  # the colour bar
    curve = pd.DataFrame({"label": "GRAM", "seed": 0, "step": [0, 10, 20], "mmd2": [0.4, 0.01, -2e-5]})
    fig = curves.plot_curves(curve, "t")
    ax, = [a for a in fig.axes if a.get_title() == mmd2.label]
    assert ax.get_yscale() == "log" and ax.get_lines()[0].get_ydata()[-1] == pytest.approx(1e-4)
    matplotlib.pyplot.close("all")


# --- the guard: no metric-name-keyed tables outside metrics/ -----------------------------------

def metric_tables(root: Path, keys: set[str]) -> list[str]:
    """``file:line`` of every table or branch in the modules of ``analysis/`` and ``sweeps/``
    below ``root`` that the catalog should hold: a dict, tuple, list or set literal naming two
    or more metrics (one metric among other data, like a record's wall time, is data), and
    ``==``/``!=`` between a metric's name and a variable or a ``.key`` (which metric it is).
    Reading a column (``df["fid"]``), testing for it (``"fid" in df``) and comparing another
    thing that shares a metric's name (``record.sweep == "fid"``) are fine."""
    def named(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Constant) and node.value in keys

    def which_metric(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) or isinstance(node, ast.Attribute) and node.attr == "key"

    hits = []
    for path in sorted(p for pkg in ("analysis", "sweeps") for p in (root / pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Dict, ast.Tuple, ast.List, ast.Set)):
                bad = sum(named(e) for e in (node.keys if isinstance(node, ast.Dict) else node.elts)) >= 2
            elif isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                bad = any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops) and \
                    any(named(o) for o in operands) and any(which_metric(o) for o in operands)
            else:
                continue
            if bad:
                hits.append(f"{path.relative_to(root)}:{node.lineno}")
    return hits


def test_no_metric_name_keyed_tables_outside_metrics():
    assert metric_tables(ROOT, set(catalog.REGISTRY)) == []


def test_a_metric_name_keyed_table_is_caught(tmp_path):
    """The guard itself: a dict keyed by metric names, a tuple of them and branches on one are
    reported; reading or testing for a column, one metric among other data and another
    thing named like a metric are not."""
    (tmp_path / "analysis").mkdir()
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "analysis" / "bad.py").write_text(
        'SCALES = {"mmd2": ("MMD", True), "spread": ("spread", True)}\n'
        'def f(metric, m):\n    if metric == "success" or "spread" != m.key:\n        return 1\n')
    (tmp_path / "sweeps" / "bad.py").write_text('SHOWN = ("fid", "kid")\n')
    (tmp_path / "sweeps" / "fine.py").write_text(
        'def f(df, m, r):\n    return df["fid"] if "fid" in df and r.sweep == "fid" else {"wall_time_s": m.key}\n')
    assert metric_tables(tmp_path, set(catalog.REGISTRY)) == ["analysis/bad.py:1", "analysis/bad.py:3",
                                                              "analysis/bad.py:3", "sweeps/bad.py:1"]
