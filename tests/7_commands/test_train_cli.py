"""The single-run command: it trains through the sweeps' worker into a folder of its
configuration's own (never over another run), reuses a finished record, records a crash
like a sweep cell, and refuses bad input with one line and exit code 2."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import store
from sweeps.stability import main as stability
from sweeps.train import main

SMALL = ["--steps", "20", "--batch", "32", "--width", "20", "--samples", "200", "--threads", "1"]


def printed_record(stdout: str) -> Path:
    """The record folder a run names on its last line."""
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("record: "), stdout
    return Path(last.removeprefix("record: "))


def test_single_run_writes_complete_record(run_cli, tmp_path):
    res = run_cli("sweeps.train", "--model", "mmdnet", "--steps", "30", "--batch", "64", "--width", "20",
                  "--samples", "500", "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    assert "modes covered:" in res.stdout
    out = printed_record(res.stdout)
    assert out == store.sweep_dir(tmp_path, "train", json.loads((out / "record.json").read_text())["config"], {})
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["model"] == "mmdnet" and record["status"] == "ok"
    assert set(record["metrics"]) >= {"modes_covered", "hq_fraction", "mode_kl", "mmd2", "success"}
    assert record["provenance"]["versions"]["torch"] == torch.__version__
    assert np.load(out / "samples.npy").shape == (500, 2)
    assert len(pd.read_csv(out / "trace.csv")) == 30
    assert (out / "samples.png").stat().st_size > 1000
    state = torch.load(out / "generator.pt")
    assert state["linears.0.weight"].shape == (1, 4, 20)
    assert not list(tmp_path.rglob(".tmp-*"))
    assert record["sweep"] == "train" and record["run"]["stack"]["members"] == [record["key"]]


def test_runs_of_other_settings_keep_their_files_and_a_rerun_reuses_its_record(tmp_path, monkeypatch, capsys):
    """Two runs into the default root that differ in a --set value (the README's df=2 run,
    then df=4) both keep every file; the same configuration again reuses its record,
    --force trains it again, and asking for snapshots it lacks trains it again with them."""
    monkeypatch.chdir(tmp_path)
    runs = {}
    for df in (2, 4):
        assert main(["--models", "gram", "--dataset", "ring3d", "--set", f"df={df}", "--snapshot-steps", "0,20",
                     *SMALL]) == 0
        runs[df] = printed_record(capsys.readouterr().out)
    assert runs[2] != runs[4] and runs[2].parents[2] == runs[4].parents[2]  # one setting, two entries
    for df, run in runs.items():
        assert run.is_relative_to(Path("results/train"))
        assert store.read(run).config["hp"]["df"] == df
        for name in ("record.json", "samples.npy", "trace.csv", "generator.pt", "snapshots.npz", "process.png",
                     "trace.png", "samples.png"):
            assert (run / name).is_file(), (df, name)

    written = (runs[2] / "record.json").read_bytes()
    assert main(["--models", "gram", "--dataset", "ring3d", "--set", "df=2", "--snapshot-steps", "0,20",
                 *SMALL]) == 0
    out, err = capsys.readouterr()
    assert "reusing it" in err and printed_record(out) == runs[2] and "modes covered:" in out
    assert (runs[2] / "record.json").read_bytes() == written

    assert main(["--models", "gram", "--dataset", "ring3d", "--set", "df=2", "--snapshot-steps", "0,10,20",
                 *SMALL]) == 0
    assert "without what --snapshot-steps asks for" in capsys.readouterr().err
    assert store.load_snapshots(runs[2])["steps"].tolist() == [0, 10, 20]
    samples = (runs[2] / "samples.npy").read_bytes()
    assert main(["--models", "gram", "--dataset", "ring3d", "--set", "df=2", *SMALL, "--force"]) == 0
    assert "reusing" not in capsys.readouterr().err and (runs[2] / "record.json").read_bytes() != written
    assert (runs[2] / "samples.npy").read_bytes() == samples  # the same configuration trains the same run
    assert len(list(store.record_dirs(tmp_path / "results"))) == 2


CRASHING = '''from objectives import Objective, register


@register
class Crashing(Objective):
    name = "crashing"
    defaults = {"toy": {"lr": 1e-2}, "image": {"lr": 1e-3}}

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.opt = self.add_optimizer("generator", self.generator.parameters())

    def step(self, real):
        raise RuntimeError("the objective broke")
'''


@pytest.mark.usefixtures("isolated_registry")
def test_a_crashed_run_leaves_a_crashed_record_like_a_sweep_cell(tmp_path, capsys):
    plugin = tmp_path / "crashing.py"
    plugin.write_text(CRASHING)
    assert main(["--models", "crashing", "--plugin", str(plugin), *SMALL, "--out", str(tmp_path / "one")]) == 1
    out, err = capsys.readouterr()
    assert "status: crashed: RuntimeError: the objective broke" in out and "1 run(s) crashed" in err
    single = store.read(printed_record(out))
    assert stability(["--models", "crashing", "--plugin", str(plugin), "--preset", "smoke", "--noise-dims", "2",
                      "--widths", "20", "--no-figures", "--out", str(tmp_path / "sweep")]) == 1
    cell = store.read(next(store.record_dirs(tmp_path / "sweep")))
    for record in (single, cell):
        assert record.status == "crashed" and record.reason == "RuntimeError: the objective broke"
        assert "the objective broke" in record.traceback and "Traceback" in record.traceback
        assert record.run["stack"]["members"] == [record.key] and not record.files
    fields = {k for k, v in single.to_json().items() if v not in (None, {}, [])}
    assert fields == {k for k, v in cell.to_json().items() if v not in (None, {}, [])} - {"axes"}
    assert single.sweep == "train" and cell.sweep == "stability"
    assert store.state(single.path, single.key) == "crashed"  # retried by the next run
    capsys.readouterr()
    assert main(["--models", "crashing", "--plugin", str(plugin), *SMALL, "--out", str(tmp_path / "one")]) == 1
    assert "reusing" not in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--model", "vae"], "unknown model vae"),
    (["--dataset", "moons"], "unknown dataset 'moons'"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--width", "-5"], "--widths values must be at least 1"),
    (["--noise-dim", "0"], "--noise-dims values must be at least 1"),
    (["--set", "lr_typo=1"], "no hyperparameter lr_typo"),
    (["--set", "lr=adam"], "lr must be a finite number"),
    (["--set", "df=0"], "df must be at least 1"),
    (["--models", "gan,gram"], "--models takes one value here"),
    (["--device", "cuda:3"], "cuda:3"),
    (["--steps", "ten"], "invalid int value"),
    (["--checkpoint-minutes", "-1"], "--checkpoint-minutes must be a number >= 0"),
    (["--checkpoint-minutes", "nan"], "--checkpoint-minutes must be a number >= 0"),
    (["--eval-every", "-2"], "--eval-every must be >= 0"),
    (["--eval-samples", "0"], "--eval-samples must be a positive integer"),
    (["--tensorboard", "--log-every", "0"], "--log-every must be a positive integer"),
    (["--dataset", "mnist5k", "--arch", "dcgan", "--eval-every", "5"], "--eval-every scores toy data here"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "x").exists()


def test_bad_input_from_the_shell_has_no_traceback(run_cli, tmp_path):
    res = run_cli("sweeps.train", "--model", "vae", "--out", tmp_path / "x")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
