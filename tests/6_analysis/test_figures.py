"""Figures and tables a paper takes unedited: readable log axes, nothing clipped or
overlapped, titles and captions in words, internals in comments, single-column figures."""
from __future__ import annotations

import functools
import os
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from builders import write_ring_records
from matplotlib.image import imread

import objectives
import store
from analysis import process, report
from analysis.curves import plot_curves
from analysis.document import Figure, Heading, Table
from analysis.figures import DPI, SINGLE_COLUMN, data_limit, draw_all, label_log_axis
from analysis.frames import cell_words, dataset_words
from analysis.process import config_title
from engine import RunConfig


def test_figure_jobs_run_on_every_core_in_their_order(monkeypatch):
    """`draw_all` runs each job once, in worker processes when the machine has several cores
    (the parent's alone when it has one), and returns the results in the jobs' order."""
    jobs = [functools.partial(str, i) for i in range(5)] + [os.getpid] * 2
    results = draw_all(jobs)
    assert results[:5] == ["0", "1", "2", "3", "4"]
    assert (os.getpid() not in results[5:]) == (len(os.sched_getaffinity(0)) > 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert draw_all(jobs)[5:] == [os.getpid()] * 2


def labelled_ticks(axis) -> list[str]:
    """The non-empty major tick labels inside ``axis``'s view, once drawn."""
    axis.figure.canvas.draw()
    lo, hi = sorted(axis.get_view_interval())
    return [t.get_text() for t in axis.get_ticklabels()
            if t.get_text() and lo <= t.get_position()[1 if axis.axis_name == "y" else 0] <= hi]


@pytest.mark.parametrize("lo, hi, expected", [(55, 95, ["60", "70", "80", "90"]), (56, 62, None),
                                              (1e-4, 1.0, ["0.0001", "0.001", "0.01", "0.1", "1"])])
def test_a_log_axis_has_at_least_two_labels_however_narrow(lo, hi, expected):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [lo, hi])
    ax.set_yscale("log")
    label_log_axis(ax.yaxis)
    ax.set_ylim(lo, hi)
    labels = labelled_ticks(ax.yaxis)
    plt.close(fig)
    assert len(labels) >= 2, labels
    assert all("times" not in t and "^" not in t for t in labels)  # plain numbers
    if expected:
        assert labels == expected
    assert all(lo <= float(t) <= hi for t in labels)


def test_fid_over_steps_between_55_and_95_reads_its_values():
    steps = np.arange(0, 1001, 100)
    fid = np.linspace(95, 55, len(steps))
    df = pd.DataFrame({"label": "GRAM-net", "seed": 0, "step": steps, "fid": fid})
    fig = plot_curves(df, "mnist")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = labelled_ticks(ax.yaxis)
    plt.close(fig)
    assert len(labels) >= 2 and all(50 <= float(t) <= 100 for t in labels), labels


def test_latex_tables_use_booktabs_and_wide_ones_span_the_page():
    from analysis.tables import WIDE_COLUMNS, to_latex
    narrow = to_latex(pd.DataFrame({"objective": ["GAN"], "FID": ["55.1 ± 2.0"]}), "FID (lower is better).",
                      "tab:fid", comment="setting steps40_batch64_6e99f4")
    assert narrow.startswith("% setting steps40_batch64_6e99f4\n\\begin{table}\n")
    assert "\\toprule" in narrow and "\\midrule" in narrow and "\\bottomrule" in narrow
    assert "6e99f4" not in narrow.split("\n", 1)[1]  # the hash is a comment, not the caption
    wide = to_latex(pd.DataFrame({f"c{i}": [i] for i in range(WIDE_COLUMNS + 1)}), "Wide.", "tab:w")
    assert wide.startswith("\\begin{table*}") and wide.rstrip().endswith("\\end{table*}")


def test_trace_footer_lies_inside_the_figure_and_clear_of_axis_labels_and_legends():
    """The band figure's footer (the cell and what lines and bands are) is wrapped to the
    figure's width and laid out below the panels' "generator step" labels and legends."""
    from analysis.traces import draw_bands
    steps = np.arange(200)
    runs = [pd.DataFrame({"loss_g": np.exp(-steps / 50) + 0.01 * s, "pd": 1 + steps / 10.0 + s}) for s in range(3)]
    groups = [(name, objectives.get(model).describe(), runs)
              for name, model in (("GAN", "gan"), ("MMD-net", "mmdnet"), ("MMD-GAN", "mmdgan"), ("GRAM-net", "gram"))]
    note = ("noise dimension 16, generator width 200; lines: median over seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "
            "bands: their range; moving average over 105 steps") * 2
    for fig in (draw_bands(groups, 5, note), draw_bands(groups[:1], 5, note)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        page = fig.bbox
        footer, = [t for t in fig.texts if t.get_text().replace("\n", " ") == note]
        box = footer.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
        for ax in fig.axes:
            if not ax.axison:
                continue
            label = ax.xaxis.label.get_window_extent(renderer)
            assert ax.xaxis.label.get_text() == "generator step"
            assert not label.overlaps(box) and page.contains(label.x0, label.y0) and page.contains(label.x1, label.y1)
            legend = ax.get_legend().get_window_extent(renderer)
            assert not legend.overlaps(box) and not legend.overlaps(label)
        plt.close(fig)


@pytest.mark.parametrize("cell, words", [
    ({"noise_dim": 4, "width": 100}, "noise dimension 4, generator width 100"),
    ("noise_dim=4_width=100", "noise dimension 4, generator width 100"),
    ("arch=dcgan", "DCGAN"), ({"arch": "weaker", "lr": 0.0005}, "Weaker, learning rate 0.0005"),
    ("default", ""), ({}, ""),
])
def test_cells_read_in_words(cell, words):
    assert cell_words(cell) == words


def test_titles_are_in_words():
    title = config_title(RunConfig(model="gram", dataset="ring3d", hp=(("df", 2),)).to_dict(),
                         objectives.get("gram").describe()["display_name"])
    assert title == "GRAM-net on the 3-D ring, $D_f$ 2 (noise dimension 4, generator width 100)"
    assert dataset_words("ring2d") == "2-D ring" and dataset_words("somewhere") == "somewhere"


def test_the_3d_process_figure_keeps_samples_inside_its_box_and_says_what_it_draws():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((200, 3))
    samples = data.copy()
    samples[:50] *= 40.0  # far outside the data's range
    snaps = {"steps": np.array([0, 10]), "data": data, "samples": np.stack([samples, data]),
             "features_data": rng.standard_normal((2, 200, 2)), "features_samples": rng.standard_normal((2, 200, 2))}
    fig = process.draw_process(snaps)
    ax = fig.axes[0]
    lim = data_limit(data)
    drawn = np.asarray(ax.collections[1]._offsets3d).T  # the samples' scatter
    assert len(drawn) < 200 and (np.abs(drawn) <= lim).all()
    assert any("off-panel" in t.get_text() for t in ax.texts)
    assert all("as is" not in a.get_title() for a in fig.axes)
    assert "its two coordinates" in fig.axes[1].get_title()
    plt.close(fig)


def _with_curves(root):
    """Every record below ``root`` rewritten with metrics over three steps."""
    for r in store.scan(root)[0]:
        curves = pd.DataFrame({"step": [0, 10, 20], "modes_covered": [2, 6, 8], "mmd2": [0.5, 0.05, 0.001]})
        store.write(r.path, r, samples=store.load_samples(r.path), trace=store.load_trace(r.path), curves=curves)


def test_report_captions_in_words_per_objective_heatmaps_and_an_appendix(tmp_path):
    """A report of small records: no caption carries ``key=value``, the engine version or the
    setting's directory name; the setting's tables keep that name in comments; each objective
    has its own single-column heatmaps; the metric-over-steps figure is shown; the per-cell
    table sits in an appendix after the claims."""
    cells = [(2, 20), (8, 20)]
    write_ring_records(tmp_path, "gram", cells, (0,))
    write_ring_records(tmp_path, "gan", cells, (0,), shift=5.0)
    _with_curves(tmp_path)
    doc, _ = report.build(tmp_path, tmp_path / "rep", ("png",), "test")
    captions = [b.caption for b in doc.blocks if isinstance(b, (Figure, Table)) and b.caption]
    setting = store.scan(tmp_path)[0][0].setting
    assert captions
    for caption in captions:
        assert not re.search(r"\w=\S", caption), caption  # no key=value (">= 10%" reads as words)
        assert "engine_version" not in caption and setting not in caption, caption
    assert any("20 generator steps, batch size 64" in c for c in captions)
    figures = [b for b in doc.blocks if isinstance(b, Figure)]
    assert any(b.path.name.startswith("over_steps_") and "noise dimension 2, generator width 20" in b.caption
               for b in figures)
    headings = [(i, b.text) for i, b in enumerate(doc.blocks) if isinstance(b, Heading)]
    claims = next(i for i, t in headings if t == "The claims and their rules")
    appendix = next(i for i, t in headings if t.startswith("Appendix"))
    assert appendix > claims and appendix == max(i for i, _ in headings)
    per_cell = [i for i, b in enumerate(doc.blocks) if isinstance(b, Table) and "per cell" in b.caption.lower()]
    assert per_cell and all(i > appendix for i in per_cell)
    group = tmp_path / "rep" / "stability" / setting / "ring2d"
    for metric in ("modes_covered", "hq_fraction"):
        assert (group / "figures" / f"heatmap_{metric}.png").exists()
        for model in ("gram", "gan"):
            width = imread(group / "figures" / f"heatmap_{metric}_{model}.png").shape[1]
            assert width == pytest.approx(SINGLE_COLUMN * DPI, abs=2)
    tex, md = (group / "tables" / "summary.tex").read_text(), (group / "tables" / "summary.md").read_text()
    assert tex.startswith(f"% setting {setting}\n") and setting not in tex.split("\n", 1)[1]
    assert f"<!-- setting {setting} -->" in md and setting not in md.split("\n", 1)[0]
    assert "engine_version" not in tex + md
