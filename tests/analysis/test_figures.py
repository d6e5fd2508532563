"""Figures a paper takes unedited: log axes always carry readable labels."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.curves import plot_curves
from analysis.figures import label_log_axis


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
