"""Seeing inside training: snapshots at the right steps, process and trace figures, extra sweep axes."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

import objectives
import store
from analysis import process, traces
from engine import RunConfig, Trainer
from sweeps.train import main as train_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = {"dataset": "ring2d", "width": 20, "batch": 32, "n_samples": 100}


def assert_png(path, min_bytes=5_000):
    assert path.exists(), path
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > min_bytes


def test_snapshots_are_taken_exactly_at_the_requested_steps():
    cfg = RunConfig(model="gram", steps=12, hp=(("df", 3),), **SMALL)
    full = Trainer([cfg], snapshot_steps=[12, 0, 5, 5], snapshot_points=50)
    full.train()
    snaps = full.outcomes()[0].snapshots
    assert snaps["steps"].tolist() == [0, 5, 12]
    assert snaps["data"].shape == (50, 2) and snaps["samples"].shape == (3, 50, 2)
    assert snaps["features_data"].shape == snaps["features_samples"].shape == (3, 50, 3)

    untrained = Trainer([cfg], snapshot_steps=[0], snapshot_points=50)
    untrained.snapshot()  # step 0 = the generator before any update
    np.testing.assert_array_equal(snaps["samples"][0], untrained.snapshots[0]["samples"][0].numpy())

    partial = Trainer([cfg], snapshot_steps=[12], snapshot_points=50)
    partial.train(steps=5)  # the same run stopped after 5 generator steps ...
    assert partial.steps_done == 5 and partial.snapshots == []
    partial.snapshot()  # ... and photographed by hand
    np.testing.assert_allclose(snaps["samples"][1], partial.snapshots[0]["samples"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(snaps["features_data"][1], partial.snapshots[0]["features_data"][0].numpy(),
                               atol=1e-6)
    assert not np.allclose(snaps["samples"][0], snaps["samples"][2])  # training moved the samples


def test_objectives_without_features_store_samples_only():
    cfg = RunConfig(model="gan", steps=3, **SMALL)
    trainer = Trainer([cfg], snapshot_steps=[0, 3], snapshot_points=40)
    trainer.train()
    snaps = trainer.outcomes()[0].snapshots
    assert set(snaps) == {"steps", "data", "samples"} and snaps["samples"].shape == (2, 40, 2)


def test_pca_recovers_the_principal_axes():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2_000))
    a, b = a - a.mean(), b - b.mean()
    b -= a * (a @ b) / (a @ a)  # exactly uncorrelated, so the principal axes are exactly e3, e1
    x = np.full((2_000, 5), 7.0)
    x[:, 3] += 5 * a / a.std()  # largest variance
    x[:, 1] += 2 * b / b.std()
    y = x[:10] + 1.0
    (px, py), explained = process.pca_2d(x, y)
    centred = x - x.mean(0)
    np.testing.assert_allclose(px, centred[:, [3, 1]], atol=1e-9)  # signs fixed: largest loading positive
    shift = py - px[:10]  # a shift in input space is one shift in PCA space
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-9)
    assert explained == pytest.approx(1.0)


@pytest.mark.parametrize("df, expect", [(2, "($D_f$=2)"), (10, "2-D PCA")])
def test_projected_view_draws_2d_as_is_and_larger_spaces_by_pca(df, expect):
    rng = np.random.default_rng(1)
    fd, fs = rng.standard_normal((100, df)), rng.standard_normal((80, df))
    d, s, label = process.projected_view(fd, fs)
    assert d.shape == (100, 2) and s.shape == (80, 2) and expect in label
    if df == 2:
        assert d is fd and s is fs
    else:
        np.testing.assert_allclose(d.mean(0), 0, atol=1e-9)  # fitted (centred) on the projected data


def _fake_snapshots(df: int | None, steps=(0, 10, 50), x_dim=2):
    rng = np.random.default_rng(2)
    snaps = {"steps": np.array(steps), "data": rng.standard_normal((60, x_dim)),
             "samples": rng.standard_normal((len(steps), 60, x_dim))}
    if df:
        snaps["features_data"] = rng.standard_normal((len(steps), 60, df))
        snaps["features_samples"] = rng.standard_normal((len(steps), 60, df))
    return snaps


@pytest.mark.parametrize("df, x_dim", [(2, 3), (10, 2), (None, 2)])
def test_process_figure_layout(df, x_dim):
    fig = process.draw_process(_fake_snapshots(df, x_dim=x_dim), steps=[0, 50])
    axes = fig.axes
    rows = 2 if df else 1
    assert len(axes) == 2 * rows
    assert [a.get_title().split("\n")[0] for a in axes[::rows]] == ["step 0", "step 50"]
    assert (axes[0].name == "3d") == (x_dim == 3)
    if df:
        assert all("projected space" in a.get_title() for a in axes[1::2])
        assert all(("PCA" in a.get_title()) == (df != 2) for a in axes[1::2])
    matplotlib.pyplot.close(fig)


def test_process_figure_shows_image_samples_as_a_mosaic():
    snaps = _fake_snapshots(16, steps=(0, 5))
    rng = np.random.default_rng(4)
    snaps["data"], snaps["samples"] = rng.uniform(size=(60, 3, 8, 8)), rng.uniform(size=(2, 60, 3, 8, 8))
    fig = process.draw_process(snaps)
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (32, 32, 3)  # 16 samples of 8x8 in a 4x4 grid
    matplotlib.pyplot.close(fig)


def test_process_figure_survives_a_diverged_projector():
    snaps = _fake_snapshots(10)
    snaps["features_data"][-1] = np.nan
    snaps["features_samples"][-1, :5] = np.inf
    fig = process.draw_process(snaps)
    assert "non-finite" in fig.axes[-1].texts[0].get_text()
    matplotlib.pyplot.close(fig)


def test_process_figure_refuses_steps_that_were_not_stored():
    with pytest.raises(ValueError, match="no snapshot at step"):
        process.draw_process(_fake_snapshots(2), steps=[0, 7])


def test_moving_average_matches_a_plain_loop():
    x = np.array([1.0, 2.0, np.nan, 4.0, 8.0, 16.0])
    got = traces.moving_average(x, 3)
    want = [1.0, 1.5, np.nan, 3.0, 6.0, 28 / 3]  # mean of the finite values among the last 3
    np.testing.assert_allclose(got, want)
    np.testing.assert_array_equal(traces.moving_average(x, 1), x)


def test_trace_panels_pair_generator_and_critic_and_use_log_for_mmd():
    rng = np.random.default_rng(3)
    gram = pd.DataFrame({"pd": rng.uniform(1, 100, 40), "mean_ratio": rng.uniform(0.9, 1, 40),
                         "loss_f": -rng.uniform(2, 101, 40), "mmd2": rng.uniform(1e-3, 1e-1, 40),
                         "loss_g": rng.uniform(0.03, 0.3, 40)})
    gan = pd.DataFrame({"loss_d": rng.uniform(0.5, 1.4, 40), "loss_g": rng.uniform(0.5, 1.4, 40),
                        "d_real": rng.uniform(size=40), "d_fake": rng.uniform(size=40)})
    described = {m: objectives.get(m).describe() for m in ("gram", "gan")}
    assert traces.panels_for(described["gram"], list(gram)) == [("loss_g", "pd"), ("mean_ratio",), ("loss_f",),
                                                                ("mmd2",)]
    assert traces.panels_for(described["gan"], list(gan))[0] == ("loss_g", "loss_d")
    plugin = {"trace_pair": ["loss_g", "loss_critic2"]}  # a plugin's own pairing; no labels: column names
    assert traces.panels_for(plugin, ["loss_g", "loss_critic2", "x"]) == [("loss_g", "loss_critic2"), ("x",)]
    assert traces.panels_for({}, ["loss_g", "x"]) == [("loss_g",), ("x",)]
    fig = traces.draw_traces([("gram", gram, described["gram"]), ("gan", gan, described["gan"])], window=5)
    axs = np.array(fig.axes).reshape(2, 4)
    assert [a.get_yscale() for a in axs[0]] == ["log", "linear", "linear", "log"]
    assert axs[1, 0].get_yscale() == "linear" and not axs[1, 3].axison  # gan has 3 panels
    labels = [t.get_text() for t in axs[0, 0].get_legend().get_texts()]
    assert "MMD" in labels[0] and "Pearson" in labels[1]
    assert len(axs[0, 0].lines) == 4  # raw + smoothed per diagnostic
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("model, sets, df", [("gram", ["--set", "df=2"], 2), ("gram", [], 10), ("gan", [], None)])
def test_train_cli_writes_trace_and_process_figures(tmp_path, model, sets, df):
    assert train_main(["--model", model, *sets, "--steps", "30", "--batch", "64", "--width", "20", "--samples", "300",
                       "--snapshot-steps", "0,10,30", "--threads", "1", "--out", str(tmp_path / "run")]) == 0
    out, = store.record_dirs(tmp_path / "run")
    assert_png(out / "trace.png")
    assert_png(out / "process.png")
    for name in ("samples", "trace", "process"):  # a PDF for the paper beside each PNG
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    snaps = store.load_snapshots(out)
    assert snaps["steps"].tolist() == [0, 10, 30]
    assert ("features_data" in snaps) == (df is not None)
    if df:
        assert snaps["features_samples"].shape == (3, 1_000, df)
    # the stand-alone commands redraw both from the record alone
    assert process.main([str(out), "--snapshot-steps", "0,30", "--out", str(tmp_path / "p.png")]) == 0
    assert traces.main([str(out), "--smooth", "5", "--out", str(tmp_path / "t.png")]) == 0
    assert_png(tmp_path / "p.png")
    assert_png(tmp_path / "t.png")


def test_train_cli_without_snapshots_writes_no_process_figure(tmp_path):
    assert train_main(["--model", "mmdnet", "--steps", "10", "--batch", "32", "--width", "20", "--samples", "200",
                       "--threads", "1", "--out", str(tmp_path / "run")]) == 0
    out, = store.record_dirs(tmp_path / "run")
    assert_png(out / "trace.png")
    assert not (out / "process.png").exists() and not (out / "snapshots.npz").exists()
    with pytest.raises(SystemExit) as exc:  # no snapshots: a one-line error, not a traceback
        process.main([str(out)])
    assert exc.value.code == 2


def test_two_axis_sweep_over_hyperparameters(tmp_path, monkeypatch):
    from sweeps.stability import main as sweep_main
    try:
        assert sweep_main(["--model", "gram", "--preset", "smoke", "--noise-dims", "4", "--widths", "20",
                           "--grid", "df=2,4", "--grid", "lr=1e-3,1e-4", "--samples", "500", "--no-figures",
                           "--jobs", "1", "--out", str(tmp_path)]) == 0
    finally:  # the worker sets process-wide torch state; give later tests the defaults back
        torch.set_num_threads(1)
        torch.set_flush_denormal(False)
    root, = (tmp_path / "stability").glob("*/ring2d")
    records = [store.read(p) for p in store.record_dirs(root)]
    assert len(records) == 4
    cells = sorted((r.config["hp"]["df"], r.config["hp"]["lr"]) for r in records)
    assert cells == [(2, 1e-4), (2, 1e-3), (4, 1e-4), (4, 1e-3)]
    assert all(r.status == "ok" and r.config["noise_dim"] == 4 and r.config["width"] == 20 for r in records)

    from analysis import stability
    saved = {}
    original = matplotlib.figure.Figure.savefig

    def spy(fig, path, *a, **kw):
        saved[str(path)] = (fig.get_supxlabel(), fig.get_supylabel())
        return original(fig, path, *a, **kw)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    monkeypatch.setattr(stability, "draw_all", lambda jobs: [job() for job in jobs])  # in this process, spied on
    stability.report(root)
    heatmap = root / "figures" / "heatmap_hq_fraction.png"
    assert_png(heatmap, 1_000)
    assert saved[str(heatmap)] == ("projection dimension", "learning rate")  # one header per axis
    assert not list((root / "figures").glob("heatmap_*=*"))  # two axes: no facets
