"""The analysis layer's statistics and rules: fixed heatmap scales, the Wilson interval, the
bolding rule of the image tables, the claims' verdicts, and the reproduction report."""
import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from builders import write_ring_records

import objectives
import store
from analysis import claims, fid_table, heatmaps, report, stats
from analysis.figures import save_figure
from analysis.tables import latex_escape
from cli import UsageError
from cli.options import figure_formats as parse_formats
from engine import RunConfig
from metrics import catalog

GRID = [(nd, w) for w in (20, 100) for nd in (2, 8)]


def grid_frame(metric: str, values, models=("gram", "gan"), seeds=(0, 1)) -> pd.DataFrame:
    """Rows like `analysis.frames.frame`'s: every model x cell x seed with ``metric`` = ``values``
    (a constant, or a function of the row index)."""
    rows = []
    for model in models:
        for nd, w in GRID:
            for seed in seeds:
                i = len(rows)
                rows.append({"entry": f"{model}_x", "label": model.upper(), "model": model, "noise_dim": nd,
                             "width": w, "seed": seed, "cell": f"noise_dim={nd}_width={w}", "n_modes": 8,
                             metric: values(i) if callable(values) else values})
    return pd.DataFrame(rows)


def cell_colours(fig) -> np.ndarray:
    """The RGBA colour of every drawn cell of the first heatmap panel."""
    image = fig.axes[0].images[0]
    return image.to_rgba(image.get_array())


@pytest.mark.parametrize("metric, perfect, top", [
    ("modes_covered_strict", 8, "viridis"), ("modes_covered", 8, "viridis"), ("hq_fraction", 1.0, "viridis"),
    ("success", True, "viridis"), ("mode_kl", 0.0, "viridis"), ("mmd2", -1e-5, "viridis"), ("spread", 1.0, "PuOr"),
])
def test_heatmap_colour_range_is_fixed_and_a_perfect_metric_gets_the_best_colour(metric, perfect, top):
    """A constant perfect value gets the best colour (viridis' top; spread's best is 1, the
    diverging map's centre), however little the data vary; the scale's limits depend on the
    metric alone."""
    best = matplotlib.colormaps[top](0.5 if metric == "spread" else 1.0)
    for values in (perfect, lambda i: perfect if i % 2 else (0.5 * perfect if metric != "mmd2" else 0.5)):
        df = grid_frame(metric, values)
        fig = heatmaps.heatmap_figure(df, metric, "noise_dim", "width", n_modes=8)
        colours = cell_colours(fig)
        lo, hi = catalog.get(metric).limits(8)
        norm = fig.axes[0].images[0].norm
        assert (norm.vmin, norm.vmax) == pytest.approx((lo, hi))
        if not callable(values):  # every cell perfect: every cell the best colour
            np.testing.assert_allclose(colours.reshape(-1, 4), np.tile(best, (colours[..., 0].size, 1)), atol=1e-6)
        matplotlib.pyplot.close(fig)
    assert catalog.get("modes_covered").limits(8) == (0, 8) and catalog.get("mode_kl").limits(8)[1] == \
        pytest.approx(math.log(8))


def test_heatmap_annotations_give_mean_std_over_seeds_and_mark_missing_seeds():
    df = grid_frame("hq_fraction", lambda i: 0.5 + 0.1 * (i % 2))
    df = df.drop(index=1)  # gram, first cell: seed 1 missing
    _, notes = heatmaps.cell_grids(df, "gram_x", "hq_fraction", "noise_dim", "width")
    assert notes[0, 0] == "0.50\n(1/2)" and notes[0, 1] == "0.55\n±0.07"
    df = grid_frame("modes_covered", 8)
    _, notes = heatmaps.cell_grids(df, "gram_x", "modes_covered", "noise_dim", "width")
    assert notes[0, 0] == "8"  # equal counts: no spurious decimals
    df = grid_frame("success", lambda i: i % 2 == 0)
    _, notes = heatmaps.cell_grids(df, "gan_x", "success", "noise_dim", "width")
    assert notes[1, 1] == "1/2"


def test_wilson_interval_matches_published_values():
    """Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (score interval without continuity correction)."""
    for k, n, want in [(81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611)),
                       (1, 29, (0.0061, 0.1718))]:
        assert stats.wilson(k, n) == pytest.approx(want, abs=1e-4)
    # and the closed form, written out independently
    k, n, z = 7, 12, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson(k, n) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert all(math.isnan(x) for x in stats.wilson(0, 0))


def test_bold_only_where_welch_separates_the_best_with_three_seeds_each():
    separated = [(25.0, 0.5, 3), (30.0, 0.6, 3), (40.0, 0.5, 3)]
    assert stats.best_by_welch(separated, lower_is_better=True) == 0
    assert stats.best_by_welch(separated, lower_is_better=False) == 2
    overlapping = [(86.38, 0.83, 3), (86.76, 8.34, 3), (95.0, 1.0, 3)]  # the case, with 3 seeds
    assert stats.best_by_welch(overlapping, lower_is_better=True) is None
    assert stats.best_by_welch([(25.0, 0.5, 2), (30.0, 0.6, 3)], True) is None  # fewer than 3 seeds
    assert stats.best_by_welch([(25.0, 0.5, 3), (math.nan, math.nan, 0)], True) is None  # nothing to beat
    # the p-value is Welch's, as scipy computes it from the raw values
    from scipy.stats import ttest_ind
    a, b = np.array([24.1, 25.3, 25.6]), np.array([26.0, 27.9, 26.4])
    want = ttest_ind(a, b, equal_var=False).pvalue
    assert stats.welch_p((a.mean(), a.std(ddof=1), 3), (b.mean(), b.std(ddof=1), 3)) == pytest.approx(want)


def summary_rows(rows, features="inception-1a2b3c4d", kid_per_fid=1e-4):
    label = "Inception-v3 pool3 (torch-fidelity, weights w.pth sha256 1a2b3c4d)"
    return pd.DataFrame([{"arch": "dcgan", "dataset": "cifar10", "features": features, "features_label": label,
                          "label": m, "seeds": 3, "finished": n,
                          "fid_mean": mean, "fid_std": std, "fid_n": n, "kid_mean": mean * kid_per_fid,
                          "kid_std": std * kid_per_fid,
                          "kid_n": n} for m, mean, std, n in rows])


def test_fid_table_bolds_by_the_stated_test_and_keeps_hashes_out_of_the_body():
    separated = summary_rows([("GAN", 30.0, 0.6, 3), ("MMD-GAN", 40.0, 1.0, 3), ("GRAM-net", 25.0, 0.5, 3)])
    table = fid_table.paper_table(separated, "fid")
    assert list(table.columns) == ["GAN", "MMD-GAN", "GRAM-net"] and table.index[0] == ("DCGAN", "cifar10")
    assert table.iloc[0].tolist() == ["30.00 ± 0.60", "40.00 ± 1.00", "**25.00 ± 0.50**"]
    unseparated = summary_rows([("GAN", 86.76, 8.34, 3), ("GRAM-net", 86.38, 0.83, 3)])
    assert "**" not in "".join(fid_table.paper_table(unseparated, "fid").iloc[0])
    two_seeds = summary_rows([("GAN", 30.0, 0.6, 3), ("MMD-GAN", 40.0, 1.0, 3), ("GRAM-net", 25.0, 1.0, 2)])
    assert fid_table.paper_table(two_seeds, "fid").iloc[0].tolist() == ["30.00 ± 0.60", "40.00 ± 1.00",
                                                                          "25.00 ± 1.00 (2/3)"]
    caption = fid_table.caption(separated, dict(zip(separated["features"], separated["features_label"])), "kid")
    assert "Welch" in caption and "KID × 10^3" in caption and "Inception-v3" in caption
    assert fid_table.paper_table(separated, "kid").iloc[0, 2] == "**2.50 ± 0.05**"  # x 10^3 for Inception
    offline = summary_rows([("GAN", 30.0, 0.6, 3), ("GRAM-net", 25.0, 0.5, 3)], features="harness-cnn-99ff",
                           kid_per_fid=0.1)
    assert fid_table.paper_table(offline, "kid").iloc[0, 0] == "3.00 ± 0.06"  # plain for the offline extractor
    both = pd.concat([separated, offline.assign(dataset="cifar10")])
    mixed = fid_table.paper_table(both, "fid")
    assert [k[-1] for k in mixed.index] == ["Inception-v3", "offline CNN"]  # short names, no hashes
    assert latex_escape("**25.00 ± 0.50**") == r"\textbf{25.00 $\pm$ 0.50}"


def write_fid_records(root, fids: dict[str, list[float]], curves: bool = False):
    """Image records (no samples) with the given FIDs per objective, one seed each (with
    ``curves``, FID over three steps too)."""
    for model, values in fids.items():
        for seed, fid in enumerate(values):
            cfg = RunConfig(model=model, dataset="mnist5k", arch="dcgan", seed=seed, steps=3, batch=64, noise_dim=128,
                            width=16, noise="uniform", n_samples=300)
            record = store.Record(config=cfg.to_dict(), status="ok", sweep="fid", axes={"arch": "dcgan"},
                                  metrics={"fid": fid, "kid": fid / 100}, objective=objectives.get(model).describe(),
                                  scoring={"features": "offline CNN features (not Inception)",
                                           "features_key": "harness-cnn-1234"})
            over = pd.DataFrame({"step": [0, 2, 3], "fid": [90.0, 2 * fid, fid]}) if curves else None
            store.write(store.sweep_dir(root, "fid", cfg.to_dict(), {"arch": "dcgan"}), record, curves=over)


def fid_frame(fids: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "arch": "dcgan", "dataset": "cifar10", "features": "inception-1", "seed": s,
                          "steps": 30000, "status": "ok", "fid": f} for m, v in fids.items() for s, f in enumerate(v)])


def test_fid_ordering_claim_reads_the_means_and_reports_welch():
    ordered = {"gram": [24.0, 25.0, 24.5], "gan": [26.0, 27.5, 26.9], "mmdgan": [40.0, 39.0, 41.0]}
    v, = claims.fid_verdicts(fid_frame(ordered), "s")
    assert v.verdict == "reproduced" and "Welch p" in v.measured and "24.85 ± 0.94" in v.paper
    v, = claims.fid_verdicts(fid_frame({**ordered, "gan": [45.0, 44.0, 46.0]}), "s")
    assert v.verdict == "not reproduced"
    v, = claims.fid_verdicts(fid_frame({"gram": [24.0], "gan": [26.0]}), "s")
    assert v.verdict == "not run" and "MMD-GAN" in v.measured
    assert claims.fid_verdicts(None)[0].verdict == "not run"


def test_the_report_shows_fid_over_steps_and_publishes_only_what_it_shows(tmp_path, capsys):
    """Image records with FID over steps: the image section shows the curves; --publish writes
    report.md and exactly the PNGs it links, as 256-colour PNGs smaller than the originals."""
    from PIL import Image
    write_fid_records(tmp_path, {"gram": [20.0, 21.0], "gan": [30.0, 31.0], "mmdgan": [40.0, 41.0]}, curves=True)
    out, pub = tmp_path / "rep", tmp_path / "pub"
    assert report.main([str(tmp_path), "--out", str(out), "--format", "png,pdf", "--publish", str(pub)]) == 0
    md = (pub / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert any("over_steps_mnist5k" in link for link in links) and "Metrics over generator steps, MNIST" in md
    published = sorted(p.relative_to(pub).as_posix() for p in pub.rglob("*") if p.is_file())
    assert published == sorted(["report.md", *links])
    for link in links:
        with Image.open(pub / link) as im:
            assert im.mode == "P" and im.size == Image.open(out / link).size
        assert (pub / link).stat().st_size < (out / link).stat().st_size
    assert "published: " in capsys.readouterr().out
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as stop:  # a --publish that cannot be written: refused before anything is drawn
        report.main([str(tmp_path), "--out", str(tmp_path / "rep2"), "--publish", str(tmp_path / "a_file" / "pub")])
    assert stop.value.code == 2 and not (tmp_path / "rep2").exists()


def test_missing_runs_are_listed_by_seed_and_extension_cells_only_where_they_ran():
    """GRAM-net also ran noise dimension 3 (an extension, off the paper's grid) and lacks one
    cell of seed 1; GAN ran seed 0 only: GAN is not asked for noise dimension 3."""
    def frame_rows(model, noise_dims, seeds, skip=()):
        return [{"entry": model, "label": model.upper(), "noise_dim": nd, "width": w, "seed": s, "status": "ok"}
                for nd in noise_dims for w in (20, 100, 200) for s in seeds if (nd, w, s) not in skip]
    df = pd.DataFrame(frame_rows("gram", (2, 3, 4, 8, 16), (0, 1), skip={(3, 20, 1)})
                      + frame_rows("gan", (2, 4, 8, 16), (0,)))
    lines = report.missing_runs(df, ["noise_dim", "width"], claims.PAPER_GRID)
    assert lines == ["GRAM: missing 1 run(s): seed 1: noise dimension 3, generator width 20",
                     "GAN: missing 12 run(s): seed(s) 1 (every cell)"]
    assert report.missing_runs(df, ["noise_dim", "width"])[1] == "GAN: missing 18 run(s): seed(s) 1 (every cell); " \
        "seed 0: noise dimension 3, generator width 20; noise dimension 3, generator width 100; noise dimension 3, " \
        "generator width 200"  # without the paper's grid as the core, every value is expected of every objective


def test_report_says_not_run_for_claims_without_records(tmp_path, capsys):
    """Only GRAM-net (fits: true samples) and GAN (every sample off by 5) on a 2 x 2 grid, and
    image records without MMD-GAN: the GRAM-net and GAN claims are decided, the others are 'not
    run', and the report says what is missing; the HTML carries its figures inside."""
    write_ring_records(tmp_path, "gram", GRID, (0, 1))
    write_ring_records(tmp_path, "gan", GRID, (0,), shift=5.0)
    write_fid_records(tmp_path, {"gram": [20.0, 21.0, 22.0], "gan": [30.0, 31.0, 32.0]})
    out = tmp_path / "rep"
    assert report.main([str(tmp_path), "--out", str(out), "--format", "png"]) == 0
    printed = capsys.readouterr().out
    md = (out / "report.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    for claim in ("GRAM-net fits all modes in all cells", "GAN fails in most cells of width >= 100"):
        # not the paper's setting
        assert "**indicative only (20 steps; the paper trains 10,500; batch 64" in rows[claim]
        assert ": supports the claim**" in rows[claim]
    for claim in ("MMD-net smears", "MMD-GAN lies in between", "FID ordering GRAM-net < GAN < MMD-GAN (Table 1)"):
        assert "**not run**" in rows[claim], claim
        assert claim in printed
    assert "no finished MMD-GAN runs" in rows["FID ordering GRAM-net < GAN < MMD-GAN (Table 1)"]
    assert re.search(r"31\.00 ± 1\.00\s*\|\s*\*\*21\.00 ± 1\.00\*\*", md)  # Welch separates them, 3 seeds each
    assert "GAN: missing 4 run(s): seed(s) 1 (every cell)" in md  # GAN ran seed 0 only
    assert md.count("cells of the paper's grid not run here") == 1  # the ring records', not the image ones
    assert "cells of the paper's grid not run here (8)" in md
    assert "code: `" in md and "versions (12 runs)" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "not run" in html
    figures = out / "stability" / next((tmp_path / "stability").iterdir()).name / "ring2d" / "figures"
    assert (figures / "samples_all.png").exists() and (figures / "heatmap_spread.png").exists()
    assert not list(figures.glob("*.pdf"))  # --format png


def test_report_with_no_records_fails_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        report.main([str(tmp_path)])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_formats_are_checked_and_every_one_is_written(tmp_path):
    assert parse_formats("png, PDF") == ("png", "pdf")
    with pytest.raises(UsageError, match="unknown figure format jpg"):
        parse_formats("png,jpg")
    fig = matplotlib.pyplot.figure()
    first = save_figure(fig, tmp_path / "heatmap_lr=0.001", ("png", "pdf"))
    assert first == tmp_path / "heatmap_lr=0.001.png"  # a dot in the name is not a suffix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heatmap_lr=0.001.pdf", "heatmap_lr=0.001.png"]


def test_mean_and_std_read_alike_on_log_scaled_metrics():
    from analysis.tables import pm
    assert pm(0.1027, 0.022, ".2g") == "0.10 ± 0.02"  # not "0.1 ± 0.022"
    assert pm(2.3, 0.79, ".2g") == "2.3 ± 0.8"
    assert pm(6.3e-5, 1.2e-5, ".2g") == "6.3e-05 ± 1.2e-05"
    assert pm(0.5, float("nan")) == "0.50" and pm(float("nan"), 1.0) == "n/a"
    assert pm(0.00283, 0.0001, ".2f", scale=1e3) == "2.83 ± 0.10"
