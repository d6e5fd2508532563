"""Scoring during and after training: an image sweep with --eval-every stores FID over
steps and precision/recall, draws the curves; sweeps.rescore reproduces the stored
metrics exactly with the same extractor and rewrites records through the store;
load_generator gives back a record's samples."""
import json

import numpy as np
import pandas as pd
import pytest

import store
from analysis.curves import main as curves_main
from sweeps.rescore import main as rescore
from sweeps.reuse import load_generator

EXTRACTOR = ["--kid-subset-size", "100", "--extractor-epochs", "1"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, feature_cache):
    from sweeps.fid import main
    out = tmp_path_factory.mktemp("fid")
    args = ["--dataset", "mnist5k", "--models", "gan,gram", "--preset", "smoke", "--steps", "4", "--samples", "300",
            "--seeds", "0,1", "--widths", "16", "--eval-every", "2", "--eval-samples", "200", *EXTRACTOR,
            "--cache-dir", str(feature_cache), "--out", str(out)]
    assert main(args) == 0
    return out


def test_image_sweep_stores_curves_precision_recall_and_draws_them(sweep):
    runs = sorted(store.record_dirs(sweep / "fid"))
    assert len(runs) == 4
    for run in runs:
        record = store.read(run)
        assert {"fid", "kid", "precision", "recall"} <= set(record.metrics)
        assert 0 <= record.metrics["precision"] <= 1 and 0 <= record.metrics["recall"] <= 1
        curve = store.load_curves(run)
        assert curve["step"].tolist() == [0, 2, 4] and {"fid", "kid", "precision", "recall"} <= set(curve)
        assert record.files["metrics_over_steps.csv"]["bytes"] == (run / "metrics_over_steps.csv").stat().st_size
    setting, = (sweep / "fid").glob("steps4_*")
    for metric in ("fid", "precision", "recall"):
        md = (setting / "tables" / f"{metric}.md").read_text()
        assert "GAN" in md and "GRAM-net" in md and "±" in md
    assert (setting / "figures" / "over_steps_mnist5k_arch=dcgan.png").stat().st_size > 10_000
    summary = pd.read_csv(setting / "tables" / "summary.csv")
    assert {"precision_mean", "recall_mean"} <= set(summary.columns)


def test_curves_command_redraws_the_figures(sweep, tmp_path, capsys):
    assert curves_main([str(sweep), "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.rglob("over_steps_*.png"))) == 1 and "over_steps_mnist5k" in capsys.readouterr().out


def test_a_generator_gives_back_its_stored_samples(sweep):
    run = next(store.record_dirs(sweep / "fid"))
    generator = load_generator(run)
    images = generator.images(300)
    assert images.dtype == np.uint8 and np.array_equal(images, store.load_samples(run))
    assert not np.array_equal(generator.images(300, role="evaluation"), images)


def test_rescoring_with_the_same_extractor_reproduces_the_stored_metrics(sweep, tmp_path, feature_cache, capsys):
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(sweep, root)
    before = {run: store.read(run) for run in store.record_dirs(root / "fid")}
    capsys.readouterr()
    assert rescore([str(root), *EXTRACTOR, "--cache-dir", str(feature_cache), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert "rescored 4 run(s)" in err and "fid: largest change 0 over 4 run(s)" in err, err
    for run, old in before.items():
        new = store.read(run)  # the checksums still hold
        assert new.metrics == old.metrics  # exactly, every metric
        assert new.files == old.files and new.config == old.config and new.provenance == old.provenance
        assert new.scoring["features_key"] == old.scoring["features_key"]
        assert new.scoring["over_steps"]["features_key"] == old.scoring["features_key"]
        assert new.scoring["rescored"]["command"] and new.scoring["samples"] == "stored"
    assert not list(root.rglob(".tmp-*"))

    # other scoring settings change the numbers, which the record and the tables then say
    assert rescore([str(root), "--kid-subset-size", "50", "--extractor-epochs", "1", "--cache-dir",
                    str(feature_cache), "--samples", "400", "--no-figures"]) == 0
    run = next(iter(before))
    record = json.loads((run / "record.json").read_text())
    assert record["scoring"]["kid_subset_size"] == 50 and record["scoring"]["samples"] == "400 drawn from generator.pt"
    assert record["metrics"]["fid"] != before[run].metrics["fid"]
    setting, = (root / "fid").glob("steps4_*")
    rows = pd.read_csv(setting / "tables" / "records.csv")  # the tables are rebuilt from the new numbers
    row, = rows[(rows["model"] == record["config"]["model"]) & (rows["seed"] == record["config"]["seed"])].itertuples()
    assert row.fid == pytest.approx(record["metrics"]["fid"], rel=1e-12)


def test_rescore_refuses_bad_input_with_one_line(tmp_path, capsys):
    for argv, message in [([str(tmp_path / "nothing")], "does not exist"),
                          ([str(tmp_path)], "no finished records"),
                          ([str(tmp_path), "--kid-subset-size", "0"], "--kid-subset-size must be a positive integer")]:
        with pytest.raises(SystemExit) as exc:
            rescore(argv)
        assert exc.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


def test_analysis_only_reads_records():
    """Records are written by the execution layer (sweeps/) through the store; no module of
    analysis/ writes or updates one."""
    import ast
    from pathlib import Path
    writers = {"write", "update", "save_checkpoint"}
    root = Path(__file__).resolve().parents[2] / "analysis"
    calls = [f"{path.name}:{node.lineno}" for path in sorted(root.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)
             and node.attr in writers and isinstance(node.value, ast.Name) and node.value.id == "store"]
    assert calls == []
    assert not (root / "rescore.py").exists() and not (root / "reuse.py").exists()
