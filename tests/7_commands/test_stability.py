"""The stability sweep: end to end, resume after SIGKILL, divergence, Dask, bad input."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import objectives
import store
from sweeps import stability, worker
from sweeps.worker import stack_tasks

RECORD_FILES = {"record.json", "samples.npy", "trace.csv", "generator.pt"}


def cell_dirs(root: Path) -> list[Path]:
    return sorted(store.record_dirs(root / "stability"))


def read_record(path: Path) -> store.Record:
    return store.read(path)


def dataset_dir(root: Path, dataset: str = "ring2d") -> Path:
    """The one setting's directory of ``dataset`` below ``root`` (where tables and figures go)."""
    found, = (root / "stability").glob(f"*/{dataset}")
    return found


def test_smoke_sweep_end_to_end_with_two_jobs(tmp_path, capsys):
    code = stability.main(["--model", "gan,gram", "--preset", "smoke", "--jobs", "2", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| GAN" in out and "| GRAM-net" in out and "successful" in out
    cells = cell_dirs(tmp_path)
    assert len(cells) == 2 * 4  # 2 objectives x (2 noise dims x 2 widths)
    for c in cells:
        assert RECORD_FILES <= {f.name for f in c.iterdir()}
        rec = read_record(c)
        assert rec.status == "ok" and rec.run["peak_rss_mb"] > 0 and rec.provenance["versions"]["torch"]
        assert set(rec.files) == RECORD_FILES - {"record.json"}
        assert rec.metric_info["mmd2"]["scale"] == "log" and set(rec.metric_info) == set(rec.metrics)  # catalogued
    ds = dataset_dir(tmp_path)
    table = pd.read_csv(ds / "tables" / "cells.csv")
    assert len(table) == 8 and {"noise_dim", "width", "hq_fraction", "modes_covered", "success"} <= set(table)
    for name in ["samples_gan", "samples_gram", "samples_all", "heatmap_hq_fraction", "heatmap_success",
                 "heatmap_mode_kl", "heatmap_mmd2", "heatmap_modes_covered"]:
        assert (ds / "figures" / f"{name}.png").stat().st_size > 5_000, name


def test_two_datasets_form_one_pool_ordered_longest_first(tmp_path):
    """The full ring experiment is one pool of stacks, one per data set and objective (all
    12 cells of a seed, ordered by width); MMD-GAN's 5 critic steps make its stacks the
    longest, so they go first."""
    sweep = stability.StabilitySweep()
    args = sweep.build_parser().parse_args(
        ["--model", "gan,mmdgan,gram", "--dataset", "ring2d,ring3d", "--out", str(tmp_path)])
    cells = sweep.plan(args).cells
    assert len(cells) == 2 * 3 * 12 and {c.config.dataset for c in cells} == {"ring2d", "ring3d"}
    stacks = stack_tasks("stability", cells, cells, lambda d: None, (), max_stack=16)
    assert len(stacks) == 2 * 3  # one stack per (dataset, objective)
    assert all(len({c.config.stack_key() for c in s.cells}) == 1 and len(s.cells) == 12 for s in stacks)
    assert all([c.config.width for c in s.cells] == [20] * 4 + [100] * 4 + [200] * 4 for s in stacks)
    models = [s.cells[0].config.model for s in stacks]
    assert models[:2] == ["mmdgan"] * 2 and "mmdgan" not in models[2:]


def test_killed_sweep_resumes_with_every_cell_once(tmp_path, run_cli):
    """SIGKILL the sweep (and its process group) mid-run; the rerun finishes the rest."""
    args = [sys.executable, "-m", "sweeps.stability", "--model", "mmdnet", "--preset", "smoke", "--steps", "300",
            "--noise-dims", "2,4,8", "--widths", "20,100", "--max-stack", "1", "--no-figures", "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(cell_dirs(tmp_path)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(cell_dirs(tmp_path))
    assert 2 <= done_before < 6, "kill should land mid-sweep"

    res = run_cli("sweeps.stability", *args[3:])
    assert res.returncode == 0, res.stderr
    assert f"({done_before} already finished)" in res.stderr
    cells = cell_dirs(tmp_path)
    assert len(cells) == 6 and len({c.parent.name for c in cells}) == 6
    for c in cells:
        assert RECORD_FILES <= {f.name for f in c.iterdir()} and read_record(c).status == "ok"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_diverging_cell_is_recorded_and_others_finish(tmp_path):
    code = stability.main(["--model", "mmdnet", "--preset", "smoke", "--noise-dims", "4", "--widths", "20",
                           "--grid", "lr=1e-3,1e9", "--out", str(tmp_path), "--no-figures"])
    assert code == 0  # diverged cells count as finished
    recs = {read_record(c).config["hp"]["lr"]: read_record(c) for c in cell_dirs(tmp_path)}
    assert recs[1e-3].status == "ok"
    assert recs[1e9].status == "diverged" and "non-finite" in recs[1e9].reason
    assert not recs[1e9].metrics["success"]


def test_crashed_cell_is_reported_and_retried(tmp_path, monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(worker, "StackRun", explode)
    argv = ["--model", "gan", "--preset", "smoke", "--noise-dims", "2", "--widths", "20", "--out", str(tmp_path),
            "--no-figures"]
    assert stability.main(argv) == 1
    rec = read_record(cell_dirs(tmp_path)[0])
    assert rec.status == "crashed" and "boom" in rec.reason and "Traceback" in rec.traceback
    monkeypatch.undo()
    assert stability.main(argv) == 0  # crashed cells are not "finished": the rerun retries them
    assert read_record(cell_dirs(tmp_path)[0]).status == "ok"
    assert "(0 already finished)" in capsys.readouterr().err


def test_dask_backend_runs_the_smoke_grid(tmp_path):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        code = stability.main(["--model", "mmdnet", "--preset", "smoke", "--backend", "dask", "--scheduler",
                               cluster.scheduler_address, "--out", str(tmp_path), "--no-figures"])
    assert code == 0
    assert [read_record(c).status for c in cell_dirs(tmp_path)] == ["ok"] * 4


@pytest.mark.parametrize("args, message", [
    (["--model", "vae"], "unknown model vae"),
    (["--dataset", "ring2d,moons"], "unknown dataset 'moons'"),
    (["--noise-dims", ","], "--noise-dims is empty"),
    (["--widths", "0"], "--widths values must be at least 1"),
    (["--devices", "cuda:0"], "cuda:0"),
    (["--backend", "dask"], "needs --scheduler"),
    (["--grid", "df"], "--grid: expects KEY=V1,V2"),
    (["--grid", "nope=1,2"], "no hyperparameter nope"),
    (["--set", "lr=adam"], "lr must be a finite number"),
    (["--dataset", "mnist5k"], "mnist5k is image data"),
    (["--out", "/proc/forbidden"], "cannot write to output root"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    argv = ["--preset", "smoke", "--out", str(tmp_path / "x"), *args]
    with pytest.raises(SystemExit) as exc:
        stability.main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_concurrent_writers_of_one_record_never_fail(tmp_path):
    """An orphaned worker of a killed sweep and the rerun may write the same cell at once."""
    path, errors = tmp_path / "cell", []

    def writer(i):
        try:
            for k in range(30):
                store.write(path, store.Record(config={"writer": i, "k": k}, status="ok"))
        except OSError as err:
            errors.append(err)
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert read_record(path).config["k"] == 29 and [p.name for p in tmp_path.iterdir()] == ["cell"]
    assert json.loads((path / "record.json").read_text())["status"] == "ok"


def test_changed_settings_train_again_and_report_the_new_configuration(tmp_path, capsys):
    """The stale-results scenario: a smoke cell, then the same cell with other steps and a
    --set value in the same output folder. The second command trains again, its table shows
    the new configuration, its record holds every resolved hyperparameter, and both
    configurations stay on disk, reported apart."""
    from analysis.stability import main as rebuild
    cell = ["--model", "gram", "--noise-dims", "2", "--widths", "20", "--out", str(tmp_path)]
    assert stability.main([*cell, "--preset", "smoke", "--no-figures"]) == 0
    capsys.readouterr()
    assert stability.main([*cell, "--steps", "300", "--set", "lr=5e-4"]) == 0
    captured = capsys.readouterr()
    assert "1 cells (0 already finished)" in captured.err
    assert "300 generator steps, batch size 200" in captured.out and "40 generator steps" not in captured.out
    records = {r.config["steps"]: r for r in map(store.read, cell_dirs(tmp_path))}
    assert sorted(records) == [40, 300]
    new = records[300]
    assert new.config["hp"] == {**objectives.get("gram").defaults["toy"], "lr": 5e-4, "sigmas": [1.0]}
    assert new.config["batch"] == 200 and new.axes == {"noise_dim": 2, "width": 20} and new.status == "ok"
    assert records[40].config["hp"]["lr"] == 1e-3 and records[40].config["batch"] == 64
    assert stability.main([*cell, "--steps", "300", "--set", "lr=5e-4", "--no-figures"]) == 0
    assert "1 cells (1 already finished)" in capsys.readouterr().err
    assert rebuild([str(tmp_path), "--no-figures"]) == 0
    tables = capsys.readouterr().out
    assert tables.count("## 2-D ring") == 2 and "40 generator steps, batch size 64" in tables
    assert "300 generator steps, batch size 200" in tables


def test_a_stack_can_hold_a_whole_grid_and_on_gpus_one_process_trains_them(tmp_path):
    """With room (a GPU's default --max-stack: launch-bound, memory to spare) every
    objective's grid on a data set, all widths and seeds, is one stack; one worker process
    per device trains the stacks, unless --jobs-per-device says otherwise."""
    from sweeps.parallel import Placement
    sweep = stability.StabilitySweep()
    args = sweep.build_parser().parse_args(["--models", "gan,gram", "--dataset", "ring2d,ring3d", "--seeds",
                                            "0,1,2,3,4", "--out", str(tmp_path)])
    cells = sweep.plan(args).cells
    tasks = stack_tasks("stability", cells, cells, lambda d: None, (), max_stack=1024)
    assert [len(t.cells) for t in tasks] == [60] * 4
    assert all({c.config.width for c in t.cells} == {20, 100, 200} for t in tasks)
    assert len(stack_tasks("stability", cells, cells, lambda d: None, (), max_stack=20)) == 12
    gpu = Placement(devices=("cuda:0",), jobs_per_device=None)
    assert gpu.fitted(24).jobs_per_device == 1 and gpu.fitted(3).jobs_per_device == 1  # one process per GPU
    assert Placement(devices=("cuda:0",), jobs_per_device=2).fitted(24).jobs_per_device == 2
