"""Live TensorBoard folders are per process: a command training into a root where another
one trains never removes or shares the other's, and a killed run's folder is taken over by
the run that resumes it."""
import os
import subprocess
import sys
import time

import store
from core.files import HOST


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def live(record, pid: int):
    folder = record.parent / f".live-{HOST}.{pid}-{record.name}"
    folder.mkdir(parents=True)
    (folder / "events").write_text(str(pid))
    return folder


def test_the_live_folder_names_its_process(tmp_path):
    record = tmp_path / "cell" / "seed0"
    assert store.live_dir(record) == tmp_path / "cell" / f".live-{HOST}.{os.getpid()}-seed0"


def test_claiming_takes_over_the_newest_dead_folder_and_never_touches_a_running_ones(tmp_path):
    record = tmp_path / "cell" / "seed0"
    older, newer = dead_pid(), dead_pid()
    old = live(record, older)
    time.sleep(0.01)
    new = live(record, newer)
    os.utime(old, (time.time() - 60, time.time() - 60))
    running = live(record, os.getppid())  # another command's, still training
    neighbour = live(tmp_path / "cell" / "seed1", older)  # another record's: its own run claims it
    legacy = record.parent / ".live-seed0"  # an older harness's name: not ours to judge
    legacy.mkdir()
    mine = store.claim_live_dir(record)
    assert mine == store.live_dir(record) and (mine / "events").read_text() == str(newer)
    assert not old.exists() and not new.exists()
    assert running.exists() and neighbour.exists() and legacy.exists()
    assert store.claim_live_dir(record) == mine and (mine / "events").exists()  # claiming again keeps it
