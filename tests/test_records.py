"""The record store and the command lines around it: typed records with the complete
configuration, identity by hash, old formats never reused, checked --set values refused
before anything is written."""
import json

import pytest

import store
from engine import RunConfig
from sweeps import fid, stability, train

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


def test_provenance_says_whether_the_working_tree_had_changes():
    prov = store.provenance()
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    assert prov["git_dirty"] in (True, False, None)
    if prov["git_commit"]:
        assert isinstance(prov["git_dirty"], bool)


def test_provenance_names_the_code_the_process_started_with(monkeypatch):
    monkeypatch.setattr(store.records, "_git", lambda *args: "a commit made while the sweep trained")
    assert store.provenance()["git_commit"] == store.records._SOURCE[0]
