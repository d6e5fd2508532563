"""The record store and the command lines around it: typed records with the complete
configuration, identity by hash, old formats never reused, checked --set values refused
before anything is written."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import store
from engine import RunConfig
from store.provenance import dirty_paths
from sweeps import fid, stability, train

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = {"sweeps.train": train.main, "sweeps.stability": stability.main, "sweeps.fid": fid.main}
EXTRA = {"sweeps.fid": ["--dataset", "mnist5k"]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("args, message", [
    (["--set", "lr=adam"], "--set lr='adam': lr must be a finite number"),
    (["--models", "mmdgan", "--set", "n_critic=0"], "--set n_critic=0: n_critic must be at least 1"),
    (["--models", "gram", "--set", "n_critic=0"], "gram has no hyperparameter n_critic"),
])
def test_bad_set_values_exit_2_with_one_line_and_write_nothing(command, args, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        COMMANDS[command]([*args, *EXTRA.get(command, []), "--out", str(out)])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_a_record_round_trips_and_its_key_is_its_configuration(tmp_path):
    cfg = RunConfig(model="gram", steps=7)
    written = store.write(tmp_path / "r", store.Record(config=cfg.to_dict(), status="ok", metrics={"x": 1.5}),
                          samples=[[0.0, 1.0]])
    back = store.read(tmp_path / "r")
    assert back.key == cfg.key() == written.key and back.metrics == {"x": 1.5}
    assert RunConfig.from_dict(back.config) == cfg and set(back.files) == {"samples.npy"}
    assert store.state(tmp_path / "r", cfg.key()) == "finished"
    assert store.state(tmp_path / "r", cfg.replace(steps=8).key()) == "replaced"
    assert store.state(tmp_path / "nothing", cfg.key()) == "missing"


def test_records_of_an_older_format_are_never_reused(tmp_path, capsys):
    """A record without the current format version is neither finished for a sweep nor read
    by the analysis commands, which name it in one line."""
    from analysis.stability import main as rebuild
    out = tmp_path / "out"
    assert stability.main(["--models", "gram", "--preset", "smoke", "--noise-dims", "2", "--widths", "20",
                           "--no-figures", "--out", str(out)]) == 0
    path, = store.record_dirs(out)
    old = json.loads((path / "record.json").read_text())
    old.pop("format")  # what the first format looked like to this reader
    old_dir = out / "stability" / "ring2d" / "gram" / "noise_dim=2_width=20" / "seed0"  # the old layout
    old_dir.mkdir(parents=True)
    (old_dir / "record.json").write_text(json.dumps(old))
    (path / "record.json").write_text(json.dumps(old))
    assert store.state(path, old["key"]).startswith("damaged: written in record format 1")
    capsys.readouterr()
    assert stability.main(["--models", "gram", "--preset", "smoke", "--noise-dims", "2", "--widths", "20",
                           "--no-figures", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "written in record format 1" in err and "1 cells (0 already finished)" in err
    assert rebuild([str(out), "--no-figures"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(old_dir) in err[0] and "written in record format 1, this version reads" in err[0]


def test_provenance_names_the_files_that_differed_from_the_commit():
    prov = store.provenance()
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    if prov["git_commit"]:
        assert isinstance(prov["git_dirty"], bool) and prov["git_dirty"] == bool(prov["git_dirty_files"])
        assert all(isinstance(p, str) and p for p in prov["git_dirty_files"])
    else:
        assert prov["git_dirty"] is None and prov["git_dirty_files"] is None


def test_dirty_paths_read_git_status_porcelain_z():
    """Modified, added, untracked, a name with spaces, and a rename (new name first, then the
    old one, which is not a path of the tree any more)."""
    out = " M store/records.py\0A  core/files.py\0?? a name with spaces.txt\0R  new.py\0old.py\0 D gone.py\0"
    assert dirty_paths(out) == ["store/records.py", "core/files.py", "a name with spaces.txt", "new.py", "gone.py"]
    assert dirty_paths("") == []


def test_provenance_names_the_code_the_process_started_with(monkeypatch):
    first = store.source()
    monkeypatch.setattr(importlib.import_module("store.provenance"), "_git", lambda *args: "a later commit\n")
    assert store.provenance()["git_commit"] == first.commit and store.source() is first


FAKE_GIT = """#!/bin/sh
echo "$@" >> "$GIT_LOG"
case "$1" in
  rev-parse) echo 0123456789abcdef0123456789abcdef01234567 ;;
  status) printf ' M store/records.py\\0?? notes.txt\\0' ;;
esac
"""


def test_git_is_asked_on_the_first_request_not_at_import_and_once_per_process(tmp_path):
    """With a git that logs its calls: importing the store and the commands runs no git; the
    first provenance asks twice (commit, status), later ones not at all."""
    (tmp_path / "git").write_text(FAKE_GIT)
    (tmp_path / "git").chmod(0o755)
    log = tmp_path / "calls"
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", GIT_LOG=str(log), PYTHONPATH=str(ROOT))
    script = """
import pathlib, sys
import store, sweeps.stability, sweeps.train
log = pathlib.Path(sys.argv[1])
assert not log.exists(), log.read_text()
a, b = store.provenance(), store.provenance()
print(a["git_commit"], a["git_dirty"], a["git_dirty_files"], b["git_commit"])
"""
    res = subprocess.run([sys.executable, "-c", script, str(log)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert res.stdout.splitlines() == [f"{commit} True ['store/records.py', 'notes.txt'] {commit}"]
    assert log.read_text().splitlines() == ["rev-parse HEAD", "status --porcelain -z"]


def test_a_worker_names_the_code_its_command_started_with(tmp_path, monkeypatch):
    """The source travels in each task: a worker process that adopts it stamps that commit,
    whatever its own git would say."""
    started = store.Source("0" * 40, ("notes.txt",))
    monkeypatch.setattr(importlib.import_module("store.provenance"), "_SOURCE", None)
    monkeypatch.setattr(importlib.import_module("store.provenance"), "_git", lambda *args: "a later commit\n")
    store.adopt(started)
    prov = store.provenance()
    assert (prov["git_commit"], prov["git_dirty_files"]) == ("0" * 40, ["notes.txt"])


def crash(cfg: RunConfig) -> store.Record:
    return store.Record(config=cfg.to_dict(), status="crashed", reason="RuntimeError: scoring failed")


@pytest.mark.parametrize("status", ["ok", "diverged"])
def test_a_crash_record_never_replaces_a_finished_record(status, tmp_path):
    cfg, path = RunConfig(model="gram", steps=7), tmp_path / "r"
    store.write(path, store.Record(config=cfg.to_dict(), status=status), samples=[[0.0, 1.0]])
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(store.FinishedRecordStands, match="a finished record stands there and is kept"):
        store.write(path, crash(cfg))
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary sibling, no lock file


def test_a_crash_record_replaces_a_crash_record_or_a_damaged_one_and_a_finished_record_replaces_it(tmp_path):
    cfg, path = RunConfig(model="gram", steps=7), tmp_path / "r"
    store.write(path, crash(cfg))
    store.write(path, store.Record(config=cfg.to_dict(), status="crashed", reason="again"))
    assert store.read(path).reason == "again"
    store.write(path, store.Record(config=cfg.to_dict(), status="ok"), samples=[[0.0, 1.0]])
    assert store.read(path).status == "ok"
    (path / "samples.npy").write_bytes(b"damaged")  # no longer finished: trained again, so a crash may stand
    store.write(path, crash(cfg))
    assert store.read(path).status == "crashed"


def test_a_finished_record_written_while_a_crash_record_is_prepared_is_kept(tmp_path):
    """A concurrent writer (another sweep's worker) finishes the record after the crash
    writer began: the crash writer checks right before its move and gives way."""
    cfg, path = RunConfig(model="gram", steps=7), tmp_path / "r"

    def meanwhile(tmp):
        store.write(path, store.Record(config=cfg.to_dict(), status="ok", metrics={"x": 1.0}))
    with pytest.raises(store.FinishedRecordStands):
        store.write(path, crash(cfg), extra=meanwhile)
    assert store.read(path).status == "ok" and [p.name for p in tmp_path.iterdir()] == ["r"]
