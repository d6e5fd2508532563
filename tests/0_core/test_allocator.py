"""glibc's malloc thresholds (`core.allocator`): a process that imports the engine reuses the
memory a step frees instead of faulting in fresh pages every step, unless asked not to.

Each case runs in a fresh interpreter: the thresholds are process-wide."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import allocator

ROOT = Path(__file__).resolve().parents[2]

# 20 "steps", each holding four 2 MB tensors at once (a stack of 12's Gram matrices are 1.9 MB)
# and freeing them: page faults counted over 20 steps after 5 (the heap's growth). With glibc's defaults the
# 8 MB freed at the top of the heap exceed its trim threshold (twice the 2 MB mmap threshold it
# has moved to), so it hands them back and faults them in again next step.
STEPS = """
import resource, torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    return [torch.ones(512, 1024) for _ in range(4)]
for _ in range(5):
    step()
before = faults()
for _ in range(20):
    step()
print(allocator.STATUS); print(faults() - before)
"""
applies_here = pytest.mark.skipif(not allocator.STATUS.startswith("glibc malloc keeps"),
                                  reason="no glibc mallopt here")


def _python(code: str, **env: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()


@applies_here
def test_importing_the_engine_reuses_freed_memory():
    status, faults = _python("import engine\nfrom core import allocator\n" + STEPS)
    assert status.startswith("glibc malloc keeps freed blocks")
    assert int(faults) < 20  # the same blocks every step: no fresh pages (a 2 MB block is 512 pages)


@applies_here
def test_the_environment_keeps_glibcs_defaults():
    status, faults = _python("import engine\nfrom core import allocator\n" + STEPS, **{allocator.ENV: "keep"})
    assert status == f"glibc's malloc defaults ({allocator.ENV}=keep)"
    assert int(faults) >= 20 * 1024  # fresh pages for at least half of the blocks, every step


def test_every_record_says_how_memory_was_allocated():
    from store import provenance
    assert provenance()["malloc"] == allocator.STATUS
