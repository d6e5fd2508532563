"""Experiments as files: the shipped TOML files are the presets and hold the paper's settings,
a file's values go through the option table like the command line's (which overrides them),
bad files are refused in one line before anything is written, the resolved experiment is saved
beside the records and named by the report, and ``sweeps.train --from`` reruns a record."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import store
from core import experiments, paper
from core.files import config_key
from sweeps import stability, train
from sweeps.fid import FidSweep
from sweeps.stability import StabilitySweep

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "experiments"
SMOKE = SHIPPED / "stability-smoke.toml"


def parse(sweep, argv):
    return sweep.parse_args(sweep.build_parser(), argv)


def comparable(args) -> dict:
    """What a parsed command line trains (where its values came from left out)."""
    return {k: v for k, v in vars(args).items() if k not in ("config", "preset", "experiment")}


def test_the_harness_ships_its_experiments_as_files():
    assert experiments.folder() == SHIPPED
    assert {p.name for p in SHIPPED.glob("*.toml")} >= {
        "paper-ring.toml", "ring3d-noise-dims.toml", "stability-full.toml", "stability-quick.toml",
        "stability-smoke.toml", "fid-full.toml", "fid-quick.toml", "fid-smoke.toml", "fid-mnist5k.toml"}
    assert not (SHIPPED / "__init__.py").exists()
    assert set(StabilitySweep().presets) == {"full", "quick", "smoke"}
    assert set(FidSweep().presets) == {"full", "quick", "smoke", "mnist5k"}


def test_the_paper_ring_experiment_and_its_extension_resolve_to_their_runs(tmp_path):
    args = parse(StabilitySweep(), ["--config", str(SHIPPED / "paper-ring.toml"), "--out", str(tmp_path)])
    assert args.models == ["gan", "mmdnet", "mmdgan", "gram"] and args.dataset == ["ring2d", "ring3d"]
    assert (args.noise_dims, args.widths, args.seeds) == ([2, 4, 8, 16], [20, 100, 200], [0, 1, 2, 3, 4])
    assert (args.steps, args.batch, args.samples) == (10_500, 200, 10_000)
    assert len(StabilitySweep().plan(args).cells) == 4 * 2 * 12 * 5
    ext = parse(StabilitySweep(), ["--config", str(SHIPPED / "ring3d-noise-dims.toml")])
    assert (ext.models, ext.dataset, ext.noise_dims, ext.widths) == (["gram"], ["ring3d"], [2, 3, 4], [20, 100, 200])
    assert (ext.seeds, ext.steps) == ([0, 1, 2, 3, 4], 10_500)


def test_the_published_image_table_resolves_to_its_runs():
    args = parse(FidSweep(), ["--preset", "mnist5k"])
    assert (args.models, args.dataset, args.seeds) == (["gan", "mmdnet", "mmdgan", "gram"], ["mnist5k"], [0, 1, 2])
    assert (args.steps, args.widths, args.eval_every, args.noise_dims, args.batch) == (2_000, [64], 200, [128], 64)


def test_core_paper_reads_the_paper_settings_from_the_experiment_files(tmp_path):
    ring = experiments.shipped("paper-ring").values
    assert paper.RING_GRID == {"noise_dim": tuple(ring["noise_dims"]), "width": tuple(ring["widths"])}
    assert (paper.RING_STEPS, paper.RING_BATCH, paper.SAMPLES) == (ring["steps"], ring["batch"], ring["samples"])
    image = experiments.shipped("fid-full").values
    assert (paper.IMAGE_BATCH, paper.IMAGE_NOISE_DIM, paper.IMAGE_STEPS, paper.IMAGE_WIDTH) == (
        image["batch"], image["noise_dims"][0], image["steps"], image["widths"][0])
    # an edited paper file changes the paper's length everywhere that reads it, presets and claims too
    copy = shutil.copytree(SHIPPED, tmp_path / "experiments")
    (copy / "paper-ring.toml").write_text((copy / "paper-ring.toml").read_text().replace("10_500", "777"))
    code = ("from core import paper; from analysis import claims; from sweeps.stability import StabilitySweep; "
            "print(paper.RING_STEPS, claims.PAPER_STEPS, StabilitySweep().presets['full'].values['steps'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT), experiments.ENV: str(copy)}).stdout
    assert out.split() == ["777", "777", "777"]


def test_no_preset_grid_or_length_is_typed_in_python():
    typed = [re.compile(r"""["'](steps|batch|n_samples|samples|noise_dims|widths)["']\s*:\s*[\d\[(]"""),  # preset dicts
             re.compile(r"\b(RING|IMAGE)_\w+(\s*:\s*\w+)?\s*=\s*\d"),  # a paper constant typed
             re.compile(r"""(noise_dim|width|GRID)\w*["']?\s*[:=]\s*[\[(]\s*\d"""),  # a grid typed: (2, 4, 8, 16)
             re.compile(r"\bpresets\s*=\s*\{"), re.compile(r"\b(10_?500|30_?000)\b")]
    files = [*sorted((ROOT / "sweeps").glob("*.py")), ROOT / "core" / "paper.py"]
    hits = [f"{path.name}:{n}: {line.strip()}" for path in files
            for n, line in enumerate(path.read_text().splitlines(), 1) if any(p.search(line) for p in typed)]
    assert hits == []
    old = ['"steps": 3_000', "RING_STEPS = 10_500", 'RING_GRID = {"noise_dim": (2, 4, 8, 16)}']
    assert all(any(p.search(line) for p in typed) for line in old)  # the check itself: the old lines are caught


def test_a_preset_is_its_file_and_the_command_line_overrides_a_file():
    by_preset = parse(StabilitySweep(), ["--preset", "smoke"])
    by_file = parse(StabilitySweep(), ["--config", str(SMOKE)])
    assert comparable(by_file) == comparable(by_preset)
    assert (by_file.steps, by_file.batch, by_file.noise_dims, by_file.widths) == (40, 64, [2, 8], [20, 100])
    over = parse(StabilitySweep(), ["--config", str(SMOKE), "--steps", "7", "--models", "gan,gram"])
    assert (over.steps, over.models, over.batch) == (7, ["gan", "gram"], 64)
    assert over.experiment["overrides"] == {"steps": 7, "models": ["gan", "gram"]}
    assert over.experiment["files"][:2] == [str(SMOKE), str(SHIPPED / "stability-full.toml")]
    fid_file = parse(FidSweep(), ["--config", str(SHIPPED / "fid-smoke.toml"), "--dataset", "mnist5k"])
    assert comparable(fid_file) == comparable(parse(FidSweep(), ["--preset", "smoke", "--dataset", "mnist5k"]))
    assert (fid_file.steps, fid_file.widths, fid_file.noise_dims, fid_file.batch) == (40, [64], [128], 64)


def test_a_file_value_goes_through_the_same_parse_and_check_as_the_command_line(tmp_path):
    exp = tmp_path / "study.toml"
    exp.write_text('command = "stability"\nmodels = "gram,mmdgan"\ndataset = ["ring3d"]\nseeds = [0, 2]\n'
                   'noise_dims = 2\nwidths = [20]\ngrid = { df = [2, 4] }\nset = { lr = 5e-4, sigmas = [1, 2] }\n'
                   'steps = 30\nema = 0.9\nnoise = "uniform"\nmax_stack = 4\nno_figures = true\n')
    cli = ["--models", "gram,mmdgan", "--dataset", "ring3d", "--seeds", "0,2", "--noise-dims", "2", "--widths", "20",
           "--grid", "df=2,4", "--set", "lr=5e-4", "--set", "sigmas=1,2", "--steps", "30", "--ema", "0.9",
           "--noise", "uniform", "--max-stack", "4", "--no-figures"]
    assert comparable(parse(StabilitySweep(), ["--config", str(exp)])) == comparable(parse(StabilitySweep(), cli))
    both = parse(StabilitySweep(), ["--config", str(exp), "--set", "lr=1e-3"])  # repeatable options add, last wins
    assert dict(both.set) == {"lr": 1e-3, "sigmas": (1, 2)}


@pytest.mark.parametrize("body, message", [
    ("stepz = 40", "unknown key 'stepz' for python -m sweeps.stability; did you mean steps?"),
    ('steps = "40"', "steps must be an integer, got '40'"),
    ("steps = 0", "steps must be a positive integer, got 0"),
    ('noise_dims = ["two"]', "noise_dims must be an integer or a list of them"),
    ("seeds = [-1]", "seeds values must be at least 0, got -1"),
    ('noise = "laplace"', "noise must be one of normal, uniform"),
    ("set = 3", "set must be a table of KEY = VALUE"),
    ("preset = \"quick\"", "unknown key 'preset'"),
    ('command = "fid"\nsteps = 4', "is an experiment of python -m sweeps.fid"),
    ("steps = = 4", "not a readable TOML file"),
    ('base = "bad.toml"', "its base chain loops back to bad.toml"),
])
def test_a_bad_file_is_one_line_and_exit_2_before_anything_is_written(tmp_path, capsys, body, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(('command = "stability"\n' if "command" not in body else "") + body + "\n")
    with pytest.raises(SystemExit) as stop:
        stability.main(["--config", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_missing_file_and_the_command_line_path_fail_in_one_line(run_cli, tmp_path):
    res = run_cli("sweeps.stability", "--config", tmp_path / "none.toml", "--out", tmp_path / "out")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "does not exist" in res.stderr
    (tmp_path / "zero.toml").write_text('command = "stability"\nsteps = 0\n')
    res = run_cli("sweeps.fid", "--config", tmp_path / "zero.toml", "--out", tmp_path / "out")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "sweeps.stability" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_smoke_file_trains_and_draws_like_the_preset_saves_its_experiment_and_reruns_nothing(tmp_path, capsys):
    """The bar: --config <smoke file> --jobs 2 trains the --preset smoke cells and draws their
    figures; --steps 7 overrides the file; the resolved experiments are saved beside the
    records and named by the report; the same command again trains nothing new."""
    from analysis.report import experiment_files
    out = tmp_path / "out"
    argv = ["--config", str(SMOKE), "--jobs", "2", "--out", str(out)]
    assert stability.main(argv) == 0
    assert "| GRAM-net" in capsys.readouterr().out
    planned = {c.path for c in StabilitySweep().plan(parse(StabilitySweep(), ["--preset", "smoke", "--out", str(out)]))
               .cells}
    records = set(store.record_dirs(out / "stability"))
    assert records == planned and len(records) == 4
    setting, = (out / "stability").iterdir()
    assert (setting / "ring2d" / "figures" / "heatmap_success.png").stat().st_size > 5_000
    saved, = setting.glob("experiment-*.json")
    resolved = json.loads(saved.read_text())
    assert resolved["name"] == "stability-smoke" and resolved["files"][0] == str(SMOKE)
    assert resolved["overrides"] == {} and resolved["options"]["steps"] == 40 and "jobs" not in resolved["options"]

    assert stability.main([*argv[:2], "--steps", "7", "--jobs", "2", "--no-figures", "--out", str(out)]) == 0
    short = next(p for p in (out / "stability").iterdir() if p != setting)
    assert {store.read(r).config["steps"] for r in store.record_dirs(short)} == {7}
    assert json.loads(next(short.glob("experiment-*.json")).read_text())["overrides"] == {"steps": 7}
    lines = experiment_files(store.scan(out)[0])
    assert len(lines) == 2 and all(f"`{SMOKE}` (over stability-full.toml, paper-ring.toml)" in x for x in lines)
    assert sum("given on the command line: steps=7" in x for x in lines) == 1

    before = {p: p.stat().st_mtime_ns for p in records}
    written = saved.read_bytes()
    capsys.readouterr()
    assert stability.main([*argv, "--no-figures"]) == 0
    assert "4 cells (4 already finished), 0 stack(s) to train" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert list(setting.glob("experiment-*.json")) == [saved] and saved.read_bytes() == written


def test_train_from_a_record_reproduces_its_samples_byte_for_byte(tmp_path, capsys):
    sweep_out, rerun_out = tmp_path / "sweep", tmp_path / "rerun"
    assert stability.main(["--preset", "smoke", "--noise-dims", "2", "--widths", "20", "--steps", "25",
                           "--samples", "300", "--no-figures", "--out", str(sweep_out)]) == 0
    record, = store.record_dirs(sweep_out)
    capsys.readouterr()
    assert train.main(["--from", str(record / "record.json"), "--out", str(rerun_out), "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    rerun = Path(out.strip().splitlines()[-1].removeprefix("record: "))
    assert rerun.is_relative_to(rerun_out / "train") and "warning" not in err and "note" not in err
    assert (rerun / "samples.npy").read_bytes() == (record / "samples.npy").read_bytes()
    assert store.read(rerun).key == store.read(record).key

    # a record made by other code: one line says so, and the run is the current code's
    data = json.loads((record / "record.json").read_text())
    data["config"]["objective_digest"] = "0123456789ab"
    data["key"] = config_key(data["config"])
    (record / "record.json").write_text(json.dumps(data))
    assert train.main(["--from", str(record), "--out", str(rerun_out)]) == 0
    err = capsys.readouterr().err
    warning, = [line for line in err.splitlines() if line.startswith("warning")]
    assert "objective_digest '0123456789ab', now" in warning and "reusing it" in err


def test_train_from_refuses_run_options_and_missing_records(tmp_path, capsys):
    for argv, message in [(["--from", str(tmp_path / "x" / "record.json")], "--from: no record at"),
                          (["--from", str(tmp_path), "--steps", "5", "--set", "lr=1"],
                           "--from trains the record's configuration; --steps, --set cannot change it")]:
        with pytest.raises(SystemExit) as stop:
            train.main([*argv, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_an_installed_copy_finds_the_files_as_package_data():
    """setup.cfg installs experiments/*.toml where `core.experiments.folder` looks without a checkout."""
    setup = (ROOT / "setup.cfg").read_text()
    assert "[options.data_files]" in setup and "\nshare/gramharness/experiments = experiments/*.toml\n" in setup
    assert "--preset" in (ROOT / "docs" / "experiments.md").read_text()
    assert "docs/experiments.md" in (ROOT / "README.md").read_text()
