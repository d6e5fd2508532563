"""The single-run command: files written, bad input refused with one line and exit code 2."""
import json

import numpy as np
import pandas as pd
import pytest
import torch


def test_single_run_writes_complete_record(run_cli, tmp_path):
    out = tmp_path / "run"
    res = run_cli("sweeps.train", "--model", "mmdnet", "--steps", "30", "--batch", "64", "--width", "20",
                  "--samples", "500", "--out", out)
    assert res.returncode == 0, res.stderr
    assert "modes covered:" in res.stdout
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["model"] == "mmdnet" and record["status"] == "ok"
    assert set(record["metrics"]) >= {"modes_covered", "hq_fraction", "mode_kl", "mmd2", "success"}
    assert record["provenance"]["versions"]["torch"] == torch.__version__
    assert np.load(out / "samples.npy").shape == (500, 2)
    assert len(pd.read_csv(out / "trace.csv")) == 30
    assert (out / "samples.png").stat().st_size > 1000
    state = torch.load(out / "generator.pt")
    assert state["linears.0.weight"].shape == (1, 4, 20)
    assert not list(tmp_path.glob(".tmp-*"))


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
    from sweeps.train import main
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "x").exists()


def test_bad_input_from_the_shell_has_no_traceback(run_cli, tmp_path):
    res = run_cli("sweeps.train", "--model", "vae", "--out", tmp_path / "x")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
