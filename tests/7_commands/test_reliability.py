"""Reliability: a cell's numbers do not depend on --jobs or on interruptions; damaged
records are named and trained again; SIGTERM, Ctrl-C and dying workers end cleanly; a full
disk gives one line; nothing is left half-written."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

import store
from analysis.stability import main as rebuild
from core import files
from sweeps import stability, train
from sweeps.worker import stack_tasks

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
# 2 stacks of 6 cells, each of both widths (noise dims 2 | 8 x widths 20, 100 x seeds 0-2)
SMOKE = ["--models", "gram", "--preset", "smoke", "--seeds", "0,1,2", "--max-stack", "6", "--no-figures"]


def cell_dirs(root: Path) -> list[Path]:
    return sorted(store.record_dirs(root / "stability"))


def samples(root: Path) -> dict[str, bytes]:
    """Every cell's samples.npy, by its path below ``root``."""
    return {str(d.relative_to(root)): (d / "samples.npy").read_bytes() for d in cell_dirs(root)}


def start(argv: list[str], out: Path) -> subprocess.Popen:
    """A sweep in its own process group, its stderr readable line by line."""
    return subprocess.Popen([sys.executable, "-m", "sweeps.stability", *argv, "--out", str(out)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_line(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stderr:
        if text in line:
            return
    raise AssertionError(f"the sweep ended before printing {text!r}")


def group(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of process group ``pgid``."""
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


pytestmark = pytest.mark.usefixtures("isolated_registry")


def disk_full(path, *args, **kwargs):
    """A stand-in for a writer on a full disk."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


# --- the same numbers whatever the parallelism --------------------------------------------

def test_same_samples_with_one_or_two_workers_and_after_a_kill_and_resume(tmp_path, capsys):
    """The bar of the reliability issue: --jobs 1, --jobs 2, and a run SIGKILLed after its
    first record then resumed give every cell byte-identical samples. A resume that finds
    a stack partly recorded trains it whole again and rewrites only its missing records."""
    one, two, killed = tmp_path / "one", tmp_path / "two", tmp_path / "killed"
    assert stability.main([*SMOKE, "--jobs", "1", "--out", str(one)]) == 0
    assert stability.main([*SMOKE, "--jobs", "2", "--out", str(two)]) == 0
    reference = samples(one)
    assert len(reference) == 12 and samples(two) == reference

    proc = start([*SMOKE, "--jobs", "1"], killed)
    deadline = time.time() + 240
    while time.time() < deadline and not cell_dirs(killed) and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(cell_dirs(killed))
    assert 1 <= done < 12, "the kill should land after the first record and before the last"
    capsys.readouterr()
    assert stability.main([*SMOKE, "--jobs", "1", "--out", str(killed)]) == 0
    assert f"({done} already finished)" in capsys.readouterr().err
    assert samples(killed) == reference
    assert not list(killed.rglob(".tmp-*"))

    # a stack with 4 of its 6 records kept: those stay as they were, the stack trains whole
    stack = [d for d in cell_dirs(one) if "width=20" in str(d)]
    kept = {d: (d / "record.json").read_bytes() for d in stack[:4]}
    for d in stack[4:]:
        shutil.rmtree(d)
    assert stability.main([*SMOKE, "--jobs", "1", "--out", str(one)]) == 0
    err = capsys.readouterr().err
    assert "(10 already finished)" in err and "4 finished cell(s) train again" in err
    assert samples(one) == reference
    assert all((d / "record.json").read_bytes() == text for d, text in kept.items())


def test_stacks_depend_on_the_grid_and_max_stack_only(tmp_path):
    """Stack membership is cut from the plan in order: neither the finished cells nor the
    worker count change it, and every record names its stack."""
    sweep = stability.StabilitySweep()
    cells = sweep.plan(sweep.build_parser().parse_args([*SMOKE, "--out", str(tmp_path)])).cells

    def members(tasks):
        return sorted(tuple(str(c.path) for c in t.cells) for t in tasks)
    full = stack_tasks("stability", cells, cells, lambda d: None, (), max_stack=6)
    assert [len(t.cells) for t in full] == [6, 6] and all(t.pending == tuple(range(6)) for t in full)
    one_left = stack_tasks("stability", cells, cells[7:8], lambda d: None, (), max_stack=6)
    assert members(one_left) == [m for m in members(full) if str(cells[7].path) in m]
    assert [t.cells[i] for t in one_left for i in t.pending] == [cells[7]]
    cut = stack_tasks("stability", cells, cells, lambda d: None, (), max_stack=4)
    assert sorted(len(t.cells) for t in cut) == [4, 4, 4]
    for t in cut:  # consecutive cells of one group in plan order, ordered by width
        group_cells = [c for c in cells if c.config.stack_key() == t.cells[0].config.stack_key()]
        start_at = min(group_cells.index(c) for c in t.cells)
        assert list(t.cells) == sorted(group_cells[start_at:start_at + len(t.cells)], key=lambda c: c.config.width)
    info = cut[0].stack(1)
    assert info == {"size": len(cut[0].cells), "index": 1, "members": [c.config.key() for c in cut[0].cells]}


# --- damaged records ------------------------------------------------------------------------

def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {  # case: (how, what the one line says)
    "record.json not UTF-8": (lambda d: (d / "record.json").write_bytes(b"\xff\xfe{\x00"), "not valid JSON"),
    "record.json not JSON": (lambda d: (d / "record.json").write_text('{"format": 2, "status": "ok"'),
                             "not valid JSON"),
    "samples.npy missing": (lambda d: (d / "samples.npy").unlink(), "samples.npy is missing"),
    "samples.npy truncated": (lambda d: truncate(d / "samples.npy"), "samples.npy differs from what was written"),
    "samples.npy of another shape": (lambda d: np.save(d / "samples.npy", np.zeros((10, 3), np.float32)),
                                     "samples.npy differs from what was written"),
    "trace.csv missing": (lambda d: (d / "trace.csv").unlink(), "trace.csv is missing"),
    "trace.csv truncated": (lambda d: truncate(d / "trace.csv"), "trace.csv differs from what was written"),
    "generator.pt missing": (lambda d: (d / "generator.pt").unlink(), "generator.pt is missing"),
    "generator.pt truncated": (lambda d: truncate(d / "generator.pt"), "generator.pt differs from what was written"),
}
CELL = ["--models", "gram", "--preset", "smoke", "--noise-dims", "2", "--widths", "20", "--seeds", "0,1",
        "--no-figures"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished sweep of two cells (one stack), copied by each test that damages it."""
    root = tmp_path_factory.mktemp("finished")
    assert stability.main([*CELL, "--out", str(root)]) == 0
    return root


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_record_is_named_in_one_line_and_trained_again(case, finished, tmp_path, capsys):
    root = tmp_path / "out"
    shutil.copytree(finished, root)
    victim = cell_dirs(root)[1]
    before = (victim / "samples.npy").read_bytes()
    damage, why = DAMAGE[case]
    damage(victim)
    capsys.readouterr()

    figures = case.startswith("samples.npy")  # what figure drawing reads
    assert rebuild([str(root)] + ([] if figures else ["--no-figures"])) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(victim) in err[0] and why in err[0], err
    if figures:
        assert next(root.rglob("samples_gram.png")).stat().st_size > 1000

    assert stability.main([*CELL, "--out", str(root)]) == 0
    err = capsys.readouterr().err
    named = [line for line in err.splitlines() if "damaged" in line]
    assert len(named) == 1 and why in named[0] and "training it again" in named[0], named
    assert "(1 already finished)" in err and "Traceback" not in err
    assert store.read(victim).status == "ok" and (victim / "samples.npy").read_bytes() == before


def test_records_of_another_format_never_make_a_figure_set(finished, tmp_path, capsys):
    """A record of a newer format is not finished for a sweep, and an analysis that finds
    only such records says so in one line and draws nothing."""
    import json
    root = tmp_path / "out"
    shutil.copytree(finished, root)
    for d in cell_dirs(root):
        data = json.loads((d / "record.json").read_text())
        (d / "record.json").write_text(json.dumps({**data, "format": store.FORMAT + 1}))
        assert store.state(d, data["key"]).startswith(f"damaged: written in record format {store.FORMAT + 1}")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        rebuild([str(root), "--out", str(tmp_path / "figures")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "no records of this kind" in err[-1]
    assert not (tmp_path / "figures").exists() and not list(root.rglob("tables"))


def test_force_with_a_failing_score_keeps_the_finished_record(finished, tmp_path, monkeypatch, capsys):
    """--force retrains a finished cell whose scoring now fails: the cell is reported as
    crashed, in one line that says the finished record is kept, and the record stays as it
    was, byte for byte."""
    root = tmp_path / "out"
    shutil.copytree(finished, root)
    before = {d: (d / "record.json").read_bytes() for d in cell_dirs(root)}

    def failing(outcome, dataset, device):
        raise RuntimeError("the scorer broke")
    monkeypatch.setattr(stability.StabilitySweep, "prepare", lambda self, args, datasets, todo:
                        {d: failing for d in datasets})
    capsys.readouterr()
    assert stability.main([*CELL, "--force", "--out", str(root)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "the scorer broke" in line]
    assert len(lines) == 2 and all("a finished record stands there and is kept" in line for line in lines), err
    assert {d: (d / "record.json").read_bytes() for d in cell_dirs(root)} == before
    assert all(store.read(d).status == "ok" for d in before)
    assert not list(root.rglob(".tmp-*")) and not list(root.rglob(".lock-*"))


# --- shutdown and dying workers -------------------------------------------------------------

DYING = '''"""Moment matching whose worker process is killed (SIGKILL, as the OOM killer does) when die == 1."""
import os
import signal

from objectives import Objective, register


@register
class Dying(Objective):
    name = "dying"
    defaults = {"toy": {"lr": 1e-2, "die": 0}, "image": {"lr": 1e-3, "die": 0}}

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        if self.hp["die"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        self.opt = self.add_optimizer("generator", self.generator.parameters())

    def step(self, real):
        x = real[0].flatten(2)
        fake = self.generator(self.noise(x.shape[1])).flatten(2)
        loss = (fake.mean(1) - x.mean(1)).pow(2).sum(-1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        return {"loss": loss.detach()}
'''


def test_a_dying_worker_becomes_crashed_records_and_the_others_finish(tmp_path, capsys):
    """The second of three stacks kills its worker process: its cell is recorded as crashed
    with the reason, a fresh worker takes the third stack, the exit code is 1."""
    plugin = tmp_path / "dying.py"
    plugin.write_text(DYING)
    out = tmp_path / "out"
    code = stability.main(["--models", "dying", "--plugin", str(plugin), "--preset", "smoke", "--noise-dims", "2",
                           "--widths", "20", "--grid", "die=0,1,2", "--jobs", "2", "--no-figures", "--out", str(out)])
    assert code == 1
    records = {r.axes["die"]: r for r in map(store.read, cell_dirs(out))}
    assert {die: r.status for die, r in records.items()} == {0: "ok", 1: "crashed", 2: "ok"}
    assert "worker process died (SIGKILL(-9))" in records[1].reason and records[1].run["stack"]["size"] == 1
    err = capsys.readouterr().err
    assert "1 cell(s) crashed" in err and "Traceback" not in err


def test_sigterm_stops_the_sweep_and_its_workers_within_10_s(tmp_path):
    proc = start(["--models", "gram", "--preset", "smoke", "--steps", "1000000", "--max-stack", "2", "--jobs", "2",
                  "--no-figures"], tmp_path / "out")  # 2 stacks, one per worker
    wait_for_line(proc, "stack(s) to train")
    deadline = time.time() + 120
    while time.time() < deadline and len(group(proc.pid)) < 3:  # the sweep and its two workers
        time.sleep(0.2)
    assert len(group(proc.pid)) >= 3
    time.sleep(1)  # the workers are training
    os.kill(proc.pid, signal.SIGTERM)  # the sweep only, as `kill` or a batch scheduler does
    sent = time.time()
    while group(proc.pid) and time.time() - sent < 10:
        time.sleep(0.1)
    assert not group(proc.pid), "a process of the sweep's group outlived SIGTERM by 10 s"
    err = proc.stderr.read()
    assert proc.wait() == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not cell_dirs(tmp_path / "out") and not list((tmp_path / "out").rglob(".tmp-*"))


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    proc = start(["--models", "gram", "--preset", "smoke", "--steps", "1000000", "--no-figures"], tmp_path / "out")
    wait_for_line(proc, "stack(s) to train")
    time.sleep(1)  # training in the sweep's own process (one worker)
    os.kill(proc.pid, signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    lines = [line for line in err.splitlines() if "stopped" in line]
    assert len(lines) == 1 and "stopped by SIGINT" in lines[0] and "rerun the same command" in lines[0]
    assert "Traceback" not in err and not list((tmp_path / "out").rglob(".tmp-*"))


# --- no leftovers, full disks -----------------------------------------------------------------

def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tmp_path):
    """What a killed `sweeps.train` left below its results root goes on the next run into
    that root, as in the sweeps; a temporary file of a writer that still runs stays."""
    host = files.HOST
    entry = tmp_path / "train" / "steps5_batch16_000000" / "ring2d" / "mmdnet_000000" / "default"
    dead = entry / f".tmp-{host}.{dead_pid()}-0000aaaa-seed0"
    alive = entry / f".tmp-{host}.{os.getpid()}-0000bbbb-seed0"
    for d in (dead, alive):
        d.mkdir(parents=True)
        (d / "samples.npy").write_bytes(b"half")
    assert train.main(["--models", "mmdnet", "--steps", "5", "--batch", "16", "--width", "8", "--samples", "100",
                       "--out", str(tmp_path)]) == 0
    assert not dead.exists() and alive.exists()
    run, = store.record_dirs(tmp_path)
    assert store.read(run).run["stack"] == {"size": 1, "index": 0, "members": [store.read(run).key]}


def disk_full_after(writes: int):
    """`store.write` that writes ``writes`` records, then finds the disk full."""
    real, done = store.write, []

    def write(path, *args, **kwargs):
        if len(done) >= writes:
            disk_full(path)
        done.append(path)
        return real(path, *args, **kwargs)
    return write


def test_a_full_disk_stops_the_sweep_in_one_line_and_a_rerun_with_space_finishes_it(finished, tmp_path, monkeypatch,
                                                                                    capsys):
    """The disk fills after a stack's first record: the sweep stops at once with ONE line naming
    the path and saying space is needed (no crash records it could not write, no other stack
    trained), leaves nothing half-written, and the same command, once there is space, records
    the rest with the samples of an uninterrupted sweep."""
    out = tmp_path / "out"
    monkeypatch.setattr(store, "write", disk_full_after(1))
    with pytest.raises(SystemExit) as exc:
        stability.main([*CELL, "--jobs", "1", "--out", str(out)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert "No space left on device writing " + str(out / "stability") in errors[0]
    assert "free space there" in errors[0] and "rerun the same command" in errors[0]
    assert "Traceback" not in err and "crash record" not in err and not list(out.rglob(".tmp-*"))
    assert [store.read(d).status for d in cell_dirs(out)] == ["ok"]
    monkeypatch.undo()
    assert stability.main([*CELL, "--out", str(out)]) == 0
    assert "(1 already finished)" in capsys.readouterr().err
    assert samples(out) == samples(finished)


def test_a_full_disk_ends_a_single_run_with_one_line(tmp_path, monkeypatch, capsys):
    """As a sweep: no crash record is attempted; one line naming the path, exit code 1."""
    monkeypatch.setattr(store, "write", disk_full)
    with pytest.raises(SystemExit) as exc:
        train.main(["--models", "mmdnet", "--steps", "5", "--batch", "16", "--width", "8", "--samples", "100",
                    "--out", str(tmp_path / "run")])
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    line, = [line for line in err.splitlines() if "error:" in line]
    assert "No space left on device writing " + str(tmp_path / "run" / "train") in line
    assert "Traceback" not in out + err and not list(tmp_path.rglob(".tmp-*"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs at ``tmp_path/disk`` (root only), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip() or made.returncode}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_really_full_disk_stops_the_sweep_in_one_line(finished, tiny_disk, capsys):
    """The same on a real 1 MiB file system: a cell's record does not fit (its generator
    weights alone exceed the space left)."""
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))
    with pytest.raises(SystemExit) as exc:
        stability.main([*CELL, "--out", str(tiny_disk / "out")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "No space left on device writing" in errors[0] and "free space there" in errors[0]
    assert "Traceback" not in err and not list(tiny_disk.rglob(".tmp-*")) and not cell_dirs(tiny_disk / "out")


def test_a_failed_extractor_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    from metrics import images

    class Labelled:
        name = "tiny"

        def images_uint8(self):
            return torch.randint(0, 256, (64, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

        def train_labels(self):
            return torch.arange(64) % 4

    write_bytes = Path.write_bytes

    def half_written(path, data):  # the sealed weights file hits a full disk half-way
        write_bytes(path, data[:10])
        disk_full(path)
    monkeypatch.setattr(Path, "write_bytes", half_written)
    with pytest.raises(OSError):
        images.offline_weights(Labelled(), tmp_path, images.OfflineConfig(epochs=1))
    assert list(tmp_path.iterdir()) == []


# --- every bad input caught before any work -----------------------------------------------------

def commands():
    from analysis.fid_table import main as fid_table
    from analysis.process import main as process
    from analysis.report import main as report
    from analysis.traces import main as traces
    from sweeps import bench, fid, rescore
    return {"sweeps.train": train.main, "sweeps.stability": stability.main, "sweeps.fid": fid.main,
            "sweeps.bench": bench.main, "sweeps.rescore": rescore.main, "analysis.stability": rebuild,
            "analysis.fid_table": fid_table, "analysis.process": process, "analysis.traces": traces,
            "analysis.report": report}


SWEEP = ["--preset", "smoke"]
FID = ["--preset", "smoke", "--dataset", "mnist5k"]
BAD = [  # command, arguments ({t}: the test's folder, {file}: a file in it), what the one line says
    ("sweeps.stability", [*SWEEP, "--set", "lr=nan"], "lr must be a finite number"),
    ("sweeps.stability", [*SWEEP, "--set", "lr=-1"], "lr must be a positive number"),
    ("sweeps.stability", [*SWEEP, "--steps", "0"], "steps must be a positive integer"),
    ("sweeps.stability", [*SWEEP, "--batch", "0"], "batch must be a positive integer"),
    ("sweeps.fid", [*FID, "--samples", "0"], "samples must be a positive integer"),
    ("sweeps.stability", [*SWEEP, "--noise-dims", ""], "--noise-dims is empty"),
    ("sweeps.stability", [*SWEEP, "--widths", ""], "--widths is empty"),
    ("sweeps.fid", [*FID, "--widths", ""], "--widths is empty"),
    ("sweeps.stability", [*SWEEP, "--widths", "1000000"], "width must be at most 4,096"),
    ("sweeps.train", ["--samples", "1000000000000"], "samples must be at most 1,000,000"),
    ("sweeps.stability", [*SWEEP, "--seeds", str(2**40)], "seed must be an integer in 0..4294967295"),
    ("sweeps.stability", [*SWEEP, "--max-stack", "0"], "--max-stack must be in 1..1024"),
    ("sweeps.stability", [*SWEEP, "--jobs", "100000"], "--jobs must be in 1..1024"),
    ("sweeps.stability", [*SWEEP, "--jobs-per-device", "0"], "--jobs-per-device must be in 1..1024"),
    ("sweeps.bench", ["--stack", "100000"], "--stack values must be at most 1024"),
    ("sweeps.train", ["--out", "{file}"], "is a file"),
    ("sweeps.stability", [*SWEEP, "--out", "{file}"], "is a file"),
    ("sweeps.fid", [*FID, "--out", "{file}"], "is a file"),
    ("sweeps.bench", ["--out", "{file}"], "is a file"),
    ("sweeps.train", ["--out", "{t}/" + "x" * 250], "is too long"),
    ("sweeps.stability", [*SWEEP, "--out", "{t}/" + "x" * 250], "is too long"),
    ("sweeps.bench", ["--out", "{t}/" + "x" * 250], "is too long"),
    ("sweeps.fid", [*FID, "--cache-dir", "{file}", "--out", "{t}/out"], "is a file"),
    ("sweeps.stability", [*SWEEP, "--backend", "dask", "--scheduler", "tcp://"], "cannot use the Dask scheduler"),
    ("sweeps.stability", [*SWEEP, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"],
     "cannot use the Dask scheduler 'tcp://127.0.0.1:9': Timed out"),
    ("sweeps.fid", [*SWEEP, "--dataset", "ring2d"], "ring2d is toy data"),
    ("sweeps.train", ["--dataset", "cifar10", "--data-root", "{t}/nodata"], "cifar10 not found"),
    ("sweeps.fid", [*SWEEP, "--dataset", "cifar10", "--data-root", "{t}/nodata", "--out", "{t}/out"],
     "cifar10 not found"),
    ("analysis.stability", ["{t}", "--out", "{file}"], "is a file"),
    ("analysis.fid_table", ["{t}", "--out", "{file}"], "is a file"),
    ("analysis.process", ["{t}/nothing"], "does not exist"),
    ("analysis.traces", ["{t}/nothing"], "does not exist"),
    ("analysis.traces", ["{t}"], "no traces below"),
    # checked while parsing (cli.options), before anything is imported for the work
    ("sweeps.stability", [*SWEEP, "--models", "gramm"], "unknown model gramm"),
    ("sweeps.stability", [*SWEEP, "--grid", "seed=1,2"], "--grid cannot sweep seed: use --seeds"),
    ("sweeps.fid", [*FID, "--kid-subset-size", "0"], "--kid-subset-size must be a positive integer"),
    ("sweeps.train", ["--devices", "cuda:x"], "--devices has unknown device 'cuda:x'"),
    ("sweeps.bench", ["--timed-steps", "0"], "--timed-steps must be a positive integer"),
    ("analysis.process", ["{t}", "--snapshot-steps", "-1"], "--snapshot-steps values must be at least 0"),
    ("analysis.traces", ["{t}", "--smooth", "0"], "--smooth must be a positive integer"),
    ("analysis.stability", ["{t}", "--format", "jpg"], "unknown figure format jpg"),
    ("analysis.process", ["{t}", "--snapshot-steps", ""], "--snapshot-steps is empty"),
    # sizes beyond core.limits, said while parsing
    ("sweeps.stability", [*SWEEP, "--eval-samples", "1000001"], "--eval-samples must be at most 1,000,000"),
    ("sweeps.train", ["--eval-samples", "0"], "--eval-samples must be a positive integer"),
    ("sweeps.rescore", ["{t}", "--samples", "2000000"], "--samples must be at most 1,000,000"),
    ("sweeps.train", ["--out", "{t}/" + "x/" * 2100], "--out is too long"),
    ("sweeps.stability", [*SWEEP, "--out", "{t}/" + "x/" * 2100], "--out is too long"),
    ("analysis.report", ["{t}", "--out", "{file}"], "is a file"),
    ("sweeps.bench", ["--timed-steps", str(10**12)], "--warmup + --timed-steps x (--repeats + 1) is"),
    ("sweeps.bench", ["--image", "--image-dataset", "ring2d"], "--image-dataset ring2d is toy data"),
    ("sweeps.bench", ["--models", "gram", "--stack", "1", "--warmup", "0", "--timed-steps", "10", "--repeats", "1",
                      "--naive", "{file}"], "the naive yardstick"),
    ("sweeps.stability", [*SWEEP, "--grid", "lr=abc"], "--grid lr='abc': lr must be a finite number"),
    ("sweeps.stability", [*SWEEP, "--grid", "steps=10,0"], "steps must be a positive integer"),
]


@pytest.mark.parametrize("command, args, message", BAD, ids=[f"{c} {' '.join(a)[-40:]}" for c, a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(command, args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRAMHARNESS_DATA_ROOT", str(tmp_path / "nodata"))  # restored after --data-root sets it
    from sweeps import bench  # as on a fresh clone without ../shared: no yardstick, and still one line
    monkeypatch.setattr(bench, "DEFAULT_NAIVE", tmp_path / "absent" / "naive_ring.py")
    (tmp_path / "afile").write_text("a file, not a folder")
    before = sorted(tmp_path.rglob("*"))
    argv = [a.format(t=tmp_path, file=tmp_path / "afile") for a in args]
    if "--out" not in argv and command.startswith("sweeps") and command != "sweeps.rescore":  # it rescores in place
        argv += ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        commands()[command](argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"python -m {command}: error:"), lines
    assert sorted(tmp_path.rglob("*")) == before


def test_duplicate_seeds_and_grid_values_train_once(tmp_path, capsys):
    assert stability.main(["--models", "gram", "--preset", "smoke", "--noise-dims", "2,2", "--widths", "20",
                           "--seeds", "0,0", "--grid", "lr=1e-3,0.001", "--no-figures", "--out", str(tmp_path)]) == 0
    assert "1 cells (0 already finished)" in capsys.readouterr().err
    assert len(cell_dirs(tmp_path)) == 1


def test_a_grid_over_run_fields_replaces_their_base_values(tmp_path):
    """--grid over steps, batch, noise, n_samples or ema sweeps that field: each cell's value
    replaces the one the preset or the options give."""
    sweep = stability.StabilitySweep()
    grid = {"steps": [3, 4], "batch": [16, 32], "noise": ["uniform"], "n_samples": [50, 60], "ema": [0.5]}
    argv = [*SWEEP, "--models", "gram", "--noise-dims", "2", "--widths", "20", "--steps", "7", "--batch", "8",
            "--out", str(tmp_path / "out")]
    for key, values in grid.items():
        argv += ["--grid", f"{key}={','.join(map(str, values))}"]
    cells = sweep.plan(sweep.build_parser().parse_args(argv)).cells
    assert len(cells) == 8 and not (tmp_path / "out").exists()
    for cell in cells:
        axes = dict(cell.axes)
        assert {k: getattr(cell.config, k) for k in grid} == {k: axes[k] for k in grid}
    assert {(c.config.steps, c.config.batch, c.config.n_samples) for c in cells} == \
        {(s, b, n) for s in (3, 4) for b in (16, 32) for n in (50, 60)}


# --- Dask: stopping and a lost scheduler ---------------------------------------------------------

def slow_task(task, device):
    time.sleep(task)
    return task


@pytest.fixture
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c


def test_a_stopped_dask_sweep_cancels_its_futures(dask_cluster, monkeypatch):
    """Ctrl-C or SIGTERM (`cli.Stopped`, a KeyboardInterrupt) while results are awaited: every
    submitted future is cancelled before the command ends."""
    import distributed

    from sweeps.parallel import Placement, run_tasks
    cancelled = []
    cancel = distributed.Client.cancel

    def spy(self, futures, *args, **kwargs):
        cancelled.extend(futures)
        return cancel(self, futures, *args, **kwargs)
    monkeypatch.setattr(distributed.Client, "cancel", spy)
    placement = Placement(backend="dask", scheduler=dask_cluster.scheduler_address)
    results = run_tasks(slow_task, [0.0, 3.0, 3.0], placement, lambda *a: None)
    assert next(results) == 0.0
    with pytest.raises(KeyboardInterrupt):
        results.throw(KeyboardInterrupt)
    assert len(cancelled) == 3
    assert all(f.status in ("cancelled", "finished") for f in cancelled)


def test_a_lost_dask_scheduler_is_one_line(dask_cluster):
    from cli import UsageError
    from sweeps.parallel import Placement, run_tasks
    placement = Placement(backend="dask", scheduler=dask_cluster.scheduler_address)
    results = run_tasks(slow_task, [0.0, 3.0, 3.0], placement, lambda *a: None)
    assert next(results) == 0.0
    dask_cluster.close()
    started = time.time()
    with pytest.raises(UsageError, match="lost the Dask scheduler") as err:
        next(results)
    assert "\n" not in str(err.value) and "rerun the same command" in str(err.value)
    assert time.time() - started < 60
