"""glibc's malloc thresholds (`core.allocator`): a process that imports the engine reuses the
memory a step frees instead of faulting in fresh pages every step, unless asked not to.

Each case runs in a fresh interpreter: the thresholds are process-wide."""
import pytest
from builders import fresh_python

from core import allocator

# 10 "steps", each writing and freeing a 64 MB tensor: page faults counted over the last 5. glibc
# by default maps every block above its mmap threshold afresh, and it never moves that threshold
# beyond 32 MiB, so a 64 MB block costs 16,384 fresh pages every step whatever ran before (a 2 MB
# block, a stack of 12's Gram matrix, only some of the time: that depends on the heap's history).
STEPS = """
import resource, torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.ones(16, 1024, 1024)
before = faults()
for _ in range(5):
    torch.ones(16, 1024, 1024)
print(allocator.STATUS); print(faults() - before)
"""
applies_here = pytest.mark.skipif(not allocator.STATUS.startswith("glibc malloc keeps"),
                                  reason="no glibc mallopt here")


def _python(code: str, **env: str) -> list[str]:
    return fresh_python(code, **env).splitlines()


@applies_here
def test_importing_the_engine_reuses_freed_memory():
    status, faults = _python("import engine\nfrom core import allocator\n" + STEPS)
    assert status.startswith("glibc malloc keeps freed blocks")
    assert int(faults) < 100  # the same block every step: no fresh pages (a 64 MB block is 16,384)


@applies_here
def test_the_environment_keeps_glibcs_defaults():
    status, faults = _python("import engine\nfrom core import allocator\n" + STEPS, **{allocator.ENV: "keep"})
    assert status == f"glibc's malloc defaults ({allocator.ENV}=keep)"
    assert int(faults) >= 5 * 8_192  # fresh pages for at least half of the block, every step


def test_every_record_says_how_memory_was_allocated():
    from store import provenance
    assert provenance()["malloc"] == allocator.STATUS
