"""One sweep at a time per output root: two sweeps writing the same records at once would
each clean up the other's partial files and train the same cells twice."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli import UsageError

LOCK_NAME = ".lock"


@contextmanager
def output_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` (``fcntl.flock``, with this process's pid in it) while the block
    runs; `UsageError` naming the holder's pid when another process holds it. The lock
    ends with the process, however it ends, so a killed sweep never leaves a stale one; a
    root this call made, and which holds nothing else when the block ends, goes again."""
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with open(root / LOCK_NAME, "a+") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "unknown"
                raise UsageError(f"another sweep (pid {holder}) is writing into {root}; wait for it to end "
                                 "or give another --out") from None
            file.truncate(0)
            file.write(f"{os.getpid()}\n")
            file.flush()
            yield
    finally:  # a sweep refused before it wrote anything leaves no folder behind
        if created and [p.name for p in root.iterdir()] == [LOCK_NAME]:
            (root / LOCK_NAME).unlink()
            root.rmdir()
