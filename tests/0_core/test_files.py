"""The ground floor's files: a write is whole or absent, a failed one leaves nothing, a killed
writer's leftovers go and a running writer's stay, digests are SHA-256."""
import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from core import files


def test_a_file_digest_is_the_sha256_of_its_bytes(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert files.file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    big = os.urandom(3 << 20)  # more than one read block
    path.write_bytes(big)
    assert files.file_digest(path) == hashlib.sha256(big).hexdigest() == files.digest_bytes(big)


def test_an_atomic_write_replaces_the_file_and_leaves_no_sibling(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    files.write_text(path, "old")
    files.write_text(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["table.csv"]


@pytest.mark.parametrize("directory", [False, True])
def test_a_failed_atomic_write_keeps_the_old_content_and_leaves_nothing(directory, tmp_path):
    path = tmp_path / "target"
    if directory:
        path.mkdir()
        (path / "kept").write_text("old")
    else:
        path.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with files.atomic_path(path, directory=directory) as tmp:
            (tmp / "half" if directory else tmp).write_text("half")
            raise OSError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["target"]
    assert (path / "kept" if directory else path).read_text() == "old"


def test_a_failed_move_into_place_leaves_nothing(tmp_path):
    def refuse(tmp, path):
        raise FileExistsError("not here")
    with pytest.raises(FileExistsError):
        with files.atomic_path(tmp_path / "d", directory=True, place=refuse) as tmp:
            (tmp / "x").write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_temporary_siblings_name_their_writer_and_fit_the_overhead(tmp_path):
    tmp = files.tmp_sibling(tmp_path / "name")
    assert tmp.name.startswith(f"{files.TMP_PREFIX}{files.HOST}.{os.getpid()}-") and tmp.name.endswith("-name")
    assert len(tmp.name) - len("name") <= files.TMP_OVERHEAD


def test_clean_partial_removes_only_what_ended_writers_left(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"{files.TMP_PREFIX}{files.HOST}.{child.pid}-0000aaaa-run"
    alive = files.tmp_sibling(tmp_path / "run")
    foreign = tmp_path / f"{files.TMP_PREFIX}ffffff.{child.pid}-0000bbbb-run"  # another host's, young
    old = tmp_path / f"{files.TMP_PREFIX}ffffff.1-0000cccc-run"  # another host's, older than an hour
    for p in (dead, alive, foreign, old):
        p.mkdir()
    os.utime(old, (0, 0))
    assert files.clean_partial(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, foreign.name])


def test_a_file_lock_lets_one_holder_in_at_a_time_and_leaves_no_file(tmp_path):
    """Four threads (each with its own lock file description, as separate processes have)
    add to a counter with a read, a pause and a write: no update is lost, and the lock file
    is gone afterwards, even though holders remove it while others wait on it."""
    target, counter = tmp_path / "record", tmp_path / "counter"
    counter.write_text("0")

    def add(times: int) -> None:
        for _ in range(times):
            with files.file_lock(target):
                value = int(counter.read_text())
                time.sleep(0.001)
                counter.write_text(str(value + 1))
    threads = [threading.Thread(target=add, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "100"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter"]
