"""glibc's malloc keeps the memory a training step frees for the next step, instead of
returning it to the system and asking for fresh pages again.

By default glibc serves every allocation above its mmap threshold (128 KiB at first, raised
as such blocks are freed, up to 32 MiB) with freshly mapped pages, and returns the top of its
heap to the system whenever more than twice that threshold lies free there. A stacked step
allocates and frees tensors of a few hundred kilobytes to a few megabytes (a stack of 12's
(12, 200, 200) Gram matrices are 1.9 MB) every step, so it kept getting new pages, each one
zeroed by the kernel on its first touch: a GRAM-net stack of 12 took about 1,000 page faults
per step (1.5-2 ms of system time in a 20 ms step), an MMD-GAN stack of 4 at width 200 about
1,000 too. `keep_freed_memory` sets both thresholds to `THRESHOLD` (256 MiB, above any
tensor a ring or image step makes), so freed blocks stay in the heap and are reused: the page
faults per step fall to a handful. A worker's memory then stays at its peak instead of
shrinking between steps; the peak itself does not grow (the same blocks are reused).

Only where allocation goes through glibc (Linux); nothing computes differently, so numbers
are bit for bit the same. Importing `engine` does this (with `core.blas`), and the bench's
yardstick gets it too. ``GRAMHARNESS_MALLOC=keep`` leaves glibc's defaults. `STATUS` says
what happened; every record's provenance stores it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

ENV = "GRAMHARNESS_MALLOC"  # "keep": leave glibc's malloc thresholds alone
THRESHOLD = 256 << 20  # bytes: blocks below are served from (and freed back to) the heap
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)


def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds to `THRESHOLD` (see the module docstring);
    returns what was done, in words."""
    if os.environ.get(ENV) == "keep":
        return f"glibc's malloc defaults ({ENV}=keep)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "the C library's malloc defaults (no glibc mallopt)"
    if not (mallopt(M_MMAP_THRESHOLD, THRESHOLD) and mallopt(M_TRIM_THRESHOLD, THRESHOLD)):
        return "glibc's malloc defaults (mallopt refused the thresholds)"
    return f"glibc malloc keeps freed blocks under {THRESHOLD >> 20} MiB for reuse (see core/allocator.py)"


STATUS = keep_freed_memory()
