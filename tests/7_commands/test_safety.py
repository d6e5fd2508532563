"""A results folder received from someone else is as safe to read as a CSV: no file in it
(a record's generator, a checkpoint, the FID cache) nor a --fid-weights file runs code when
a command reads it, and no name or symbolic link in it makes a command write outside it."""
import json
import pathlib

import pytest
import torch
from builders import write_ring_records

import store
from analysis.report import main as report_main
from analysis.stability import main as stability_main
from core.files import OutsideRoot, check_inside, file_digest, write_sealed
from metrics.images import FEATURES_KIND, WEIGHTS_KIND, FeatureError, resolve_features
from sweeps.rescore import main as rescore
from sweeps.reuse import load_generator

EXTRACTOR = ["--kid-subset-size", "100", "--extractor-epochs", "1"]


class Plant:
    """A pickle whose loading creates ``marker``: the side effect of a planted payload."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def plant(path: pathlib.Path, marker: pathlib.Path, kind: str | None = None) -> None:
    """Replace ``path`` by the planted pickle, raw or (with ``kind``) under a valid sealed header."""
    import io
    buffer = io.BytesIO()
    torch.save(Plant(marker), buffer)
    if kind:
        write_sealed(path, kind, buffer.getvalue())
    else:
        path.write_bytes(buffer.getvalue())


def test_the_planted_pickle_runs_when_loaded_unsafely(tmp_path):
    """The test's own check: the payload does run under weights_only=False."""
    plant(tmp_path / "p.pt", tmp_path / "marker")
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert (tmp_path / "marker").exists()


@pytest.fixture(scope="module")
def image_results(tmp_path_factory):
    """A small image sweep whose FID cache lives in its results folder (RESULTS/fid/cache)."""
    from sweeps.fid import main
    out = tmp_path_factory.mktemp("received")
    assert main(["--dataset", "mnist5k", "--models", "gan", "--preset", "smoke", "--steps", "2", "--samples", "200",
                 "--seeds", "0", "--widths", "16", *EXTRACTOR, "--out", str(out)]) == 0
    return out


def reseal_record(run: pathlib.Path, name: str) -> None:
    """Make the record's checksums agree with its (planted) file ``name``, as an attacker would."""
    data = json.loads((run / "record.json").read_text())
    data["files"][name] = {"bytes": (run / name).stat().st_size, "sha256": file_digest(run / name)}
    (run / "record.json").write_text(json.dumps(data))


def test_planted_pickles_never_run_and_each_command_says_one_line(image_results, tmp_path, capsys):
    marker = tmp_path / "marker"
    cache = image_results / "fid" / "cache"
    sealed = {p: WEIGHTS_KIND if p.suffix == ".pt" else FEATURES_KIND for p in cache.iterdir()}
    assert any(k == FEATURES_KIND for k in sealed.values()) and any(k == WEIGHTS_KIND for k in sealed.values())
    for i, (path, kind) in enumerate(sealed.items()):  # both a raw pickle and one under a valid header
        plant(path, marker, kind if i % 2 else None)
    name = next(p.stem for p in cache.glob("*.features"))
    plant(cache / f"{name}-harness-cnn-features-features.pt", marker)  # where torch-fidelity once looked
    run, = store.record_dirs(image_results / "fid")
    plant(run / "generator.pt", marker)
    reseal_record(run, "generator.pt")
    checkpoint = store.stack_checkpoint(run, ["x"])
    plant(checkpoint, marker, "checkpoint")
    weights = tmp_path / "weights.pth"
    plant(weights, marker)
    capsys.readouterr()

    with pytest.raises(store.DamagedRecord, match="generator.pt cannot be loaded"):
        load_generator(run)
    with pytest.raises(store.DamagedCheckpoint):
        store.load_checkpoint(checkpoint)
    with pytest.raises(SystemExit) as exit_:
        rescore([str(image_results), "--features", "inception", "--fid-weights", str(weights), "--no-figures"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "not a usable Inception-v3 weights file" in err and len(err.splitlines()) == 1
    assert rescore([str(image_results), *EXTRACTOR]) == 0  # damaged cache files: named, discarded, rebuilt
    err = capsys.readouterr().err
    assert err.count("discarding the damaged cache file") == len(sealed) and "Traceback" not in err
    with pytest.raises(SystemExit, match="2"):  # no stability records here
        stability_main([str(image_results)])
    capsys.readouterr()
    assert report_main([str(image_results)]) == 0
    assert not marker.exists()
    assert rescore([str(image_results), *EXTRACTOR, "--no-figures"]) == 0  # the rebuilt cache is used as it is
    assert "discarding" not in capsys.readouterr().err and not marker.exists()


def test_a_planted_inception_weights_file_is_refused_before_torch_fidelity_opens_it(tmp_path):
    import data
    plant(tmp_path / "w.pth", tmp_path / "marker")
    with pytest.raises(FeatureError, match="holds more than tensors"):
        resolve_features("inception", data.get("mnist5k"), weights=str(tmp_path / "w.pth"))
    assert not (tmp_path / "marker").exists()


def listing(root: pathlib.Path, skip: pathlib.Path) -> dict[str, int]:
    return {str(p): p.lstat().st_size for p in root.rglob("*") if skip not in p.parents and p != skip}


def hostile(run: pathlib.Path, axes=None, **config) -> None:
    """Rewrite a record's axes or configuration fields (with a matching key, so it passes its checksums)."""
    data = json.loads((run / "record.json").read_text())
    data["axes"].update(axes or {})
    data["config"].update(config)
    data["key"] = store.records.config_key(data["config"])
    (run / "record.json").write_text(json.dumps(data))


@pytest.mark.parametrize("axes, config", [({"width": "../../../../../escape"}, {}), ({"width": "/tmp/escape"}, {}),
                                          ({}, {"dataset": "../../../../escape"}), ({}, {"model": "/abs/escape"}),
                                          ({"../up": 1}, {})])
def test_a_record_naming_a_path_outside_is_skipped_and_nothing_is_written_outside(axes, config, tmp_path, capsys):
    root = tmp_path / "results"
    write_ring_records(root, "gan", [(2, 20)], [0])
    write_ring_records(root, "gram", [(2, 20)], [0])
    run = next(r for r in store.record_dirs(root) if "gram" in str(r))
    hostile(run, axes, **config)
    before = listing(tmp_path, root)
    assert stability_main([str(root), "--no-figures"]) == 0
    assert report_main([str(root)]) == 0
    err = capsys.readouterr().err
    assert f"skipping {run}" in err and "not a plain file name" in err and "Traceback" not in err
    assert listing(tmp_path, root) == before
    assert store.state(run, "any").startswith("damaged")  # so a sweep trains it again


def test_a_symlinked_figures_folder_is_never_written_through(tmp_path, capsys):
    root, outside = tmp_path / "results", tmp_path / "outside"
    write_ring_records(root, "gan", [(2, 20)], [0])
    outside.mkdir()
    (outside / "heatmap_success.png").write_text("keep me")
    run, = store.record_dirs(root)
    group = store.setting_dir_of(store.read(run)) / "ring2d"
    group.mkdir(exist_ok=True)
    (group / "figures").symlink_to(outside)
    before = listing(tmp_path, root)
    assert stability_main([str(root)]) == 0  # its only group refused, in one line
    err = capsys.readouterr().err
    assert "symbolic link" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    report_out = tmp_path / "report"
    (report_out / "stability" / group.parent.name / "ring2d").mkdir(parents=True)
    (report_out / "stability" / group.parent.name / "ring2d" / "tables").symlink_to(outside)
    before = listing(tmp_path, root)
    with pytest.raises(SystemExit, match="2"):
        report_main([str(root), "--out", str(report_out)])
    err = capsys.readouterr().err
    assert "symbolic link" in err and len(err.splitlines()) == 1
    assert listing(tmp_path, root) == before and (outside / "heatmap_success.png").read_text() == "keep me"


def test_check_inside_refuses_dot_dot_absolute_names_and_links(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert check_inside(tmp_path, tmp_path / "a" / "b.txt") == tmp_path / "a" / "b.txt"
    for path in (tmp_path / ".." / "x", pathlib.Path("/etc/x"), tmp_path / "link" / "x", tmp_path / "link", tmp_path):
        with pytest.raises(OutsideRoot):
            check_inside(tmp_path, path)


def test_sample_counts_outside_the_bounds_are_one_line_errors():
    from sweeps.reuse import Generator
    generator = Generator(config=None, net=None, device=None, record=None)  # refused before any is used
    for n in (0, -1, 10**12, 2.5, True):
        with pytest.raises(ValueError, match="must be an integer in 1..1,000,000"):
            generator.sample(n)


# --- records whose checksums hold but whose content is malformed ------------------------------

def with_extras(root: pathlib.Path) -> None:
    """Give every record below ``root`` metrics over steps and snapshots, as a sweep with
    --eval-every and --snapshot-steps writes them."""
    import dataclasses

    import numpy as np
    import pandas as pd
    for run in store.record_dirs(root):
        record = store.read(run)
        curves = pd.DataFrame({"step": [0, 10, 20], "mmd2": [0.5, 0.1, 0.01], "sharpness": [0.1, 0.3, 0.5]})
        snapshots = {"steps": np.array([0, 20]), "data": np.ones((5, 2), np.float32),
                     "samples": np.zeros((2, 5, 2), np.float32)}
        store.write(run, dataclasses.replace(record, files={}), samples=store.load_samples(run),
                    trace=store.load_trace(run), curves=curves, snapshots=snapshots)


def edit_record(run: pathlib.Path, edit) -> None:
    """Apply ``edit`` to the record's JSON data, with a matching key (so it passes its checksums)."""
    data = json.loads((run / "record.json").read_text())
    edit(data)
    data["key"] = store.records.config_key(data["config"])
    (run / "record.json").write_text(json.dumps(data))


def replace_file(name: str, content: bytes):
    def damage(run: pathlib.Path) -> None:
        (run / name).write_bytes(content)
        reseal_record(run, name)
    return damage


def object_samples(run: pathlib.Path) -> None:
    import numpy as np
    np.save(run / "samples.npy", np.array([[{"x": 1}, None]], dtype=object), allow_pickle=True)
    reseal_record(run, "samples.npy")


MALFORMED = {  # case: (how, what the one line says)
    "object-array samples": (object_samples, "samples.npy holds object values, not numbers"),
    "non-UTF-8 trace": (replace_file("trace.csv", b"step,loss_g\n0,\xff\xfe\x00\n"), "trace.csv cannot be read"),
    "trace of words": (replace_file("trace.csv", b"step,loss_g\n0,lots\n"), "trace.csv holds values that are not"),
    "snapshots not a zip": (replace_file("snapshots.npz", b"PK but not a zip"), "snapshots.npz cannot be read (not an"),
    "curves without steps": (replace_file("metrics_over_steps.csv", b"mmd2\n0.5\n"), "has no step column"),
    "curves of word steps": (replace_file("metrics_over_steps.csv", b"step,mmd2\nlate,0.5\n"),
                             "metrics_over_steps.csv holds values that are not numbers (column 'step')"),
    "missing config fields": (lambda run: edit_record(run, lambda d: d["config"].pop("steps")),
                              "lacks fields or has them of the wrong type (steps)"),
    "empty axes": (lambda run: edit_record(run, lambda d: d.update(axes={})), "lies outside the folder of the setting"),
    "an empty axis": (lambda run: edit_record(run, lambda d: d["axes"].update(width=[])), "has an empty axis"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_content_is_skipped_by_every_reader_in_one_line_and_not_finished(case, tmp_path, capsys):
    from analysis.curves import main as curves_main
    from analysis.process import main as process_main
    from analysis.traces import main as traces_main
    root = tmp_path / "results"
    write_ring_records(root, "gan", [(2, 20)], [0])
    write_ring_records(root, "gram", [(2, 20)], [0])
    with_extras(root)
    run = next(r for r in store.record_dirs(root) if "gram" in str(r))
    key = store.read(run).key
    damage, why = MALFORMED[case]
    damage(run)
    capsys.readouterr()
    assert store.state(run, key).startswith("damaged") and why in store.state(run, key)
    for command, argv in [(stability_main, [str(root), "--format", "png"]),
                          (report_main, [str(root), "--out", str(tmp_path / "report"), "--format", "png"]),
                          (traces_main, [str(root), "--format", "png"]),
                          (curves_main, [str(root), "--format", "png"])]:
        assert command(argv) == 0
        err = capsys.readouterr().err
        skipped = [line for line in err.splitlines() if f"skipping {run}" in line]
        assert len(skipped) == 1 and why in skipped[0] and "Traceback" not in err, (command.__module__, err)
    for command, argv in [(process_main, [str(run)]), (traces_main, [str(run)])]:  # the record itself: refused
        if case in ("missing config fields", "empty axes"):  # its files hold: drawn ('?' for what it lacks)
            assert command(argv) == 0
            continue
        with pytest.raises(SystemExit) as exc:
            command(argv)
        lines = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(lines) == 1 and why in lines[0], lines


@pytest.mark.parametrize("name, content, why", [
    ("samples.npy", None, "samples.npy cannot be read (Object arrays cannot be loaded"),
    ("trace.csv", b"step,loss_g\n0,\xff\n", "trace.csv cannot be read"),
    ("trace.csv", b"loss_g\n1\n", "trace.csv has no step column"),
    ("snapshots.npz", b"not a zip", "snapshots.npz cannot be read (not an .npz archive)"),
    ("metrics_over_steps.csv", b"step,mmd2\n0,\xff\n", "metrics_over_steps.csv cannot be read"),
])
def test_the_loaders_raise_a_damaged_record_in_one_line(name, content, why, tmp_path):
    import numpy as np
    loaders = {"samples.npy": store.load_samples, "trace.csv": store.load_trace, "snapshots.npz": store.load_snapshots,
               "metrics_over_steps.csv": store.load_curves}
    if content is None:
        np.save(tmp_path / name, np.array([[object()]], dtype=object), allow_pickle=True)
    else:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(store.DamagedRecord) as err:
        loaders[name](tmp_path)
    assert why in str(err.value) and "\n" not in str(err.value)
    if name == "snapshots.npz":  # an archive holding an object array
        np.savez(tmp_path / name, steps=np.array([0]), samples=np.array([None], dtype=object))
        with pytest.raises(store.DamagedRecord, match=r"snapshots.npz\[samples\] holds object values"):
            store.records.check_content(tmp_path, [name])
        with pytest.raises(store.DamagedRecord, match="snapshots.npz cannot be read"):
            store.load_snapshots(tmp_path)
