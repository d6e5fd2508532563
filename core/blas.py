"""MKL's matrix-product kernels chosen by the processor's features, not its vendor.

torch's CPU build links Intel's MKL, which asks the CPU's vendor before its features: on an
AMD processor it runs its generic AVX2 code, which copies (packs) both operands of every
product first, where the same processor runs MKL's AVX-512 kernels, whose small products
need no packing. On this project's AMD EPYC (Zen 4) machine the network layers' products ran
1.2-1.4x faster with them and MMD-GAN's whole step about 10% faster (README, "Speed").

MKL keeps its vendor answer in one cached flag, read by ``mkl_serv_intel_cpu_true``, and picks
its kernels once per process, at its first product. `prefer_feature_dispatch` sets that flag
before then, after checking the function's machine code is the known flag read (any other
MKL build is left alone), so MKL then picks by the features the CPU reports, as it does on an
Intel CPU. Importing `engine` does this, so every process that trains (a single run, a sweep's
workers, the bench, the test suite) computes with the same kernels. The results are the same
mathematics; sums are ordered by other kernels, so numbers differ from MKL's generic path in
their last bits, as they do between machines. ``GRAMHARNESS_MKL_VENDOR_CHECK=keep`` keeps
MKL's own choice. `STATUS` says what happened; every record's provenance stores it.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
from pathlib import Path

import torch

ENV = "GRAMHARNESS_MKL_VENDOR_CHECK"  # "keep": leave MKL's vendor-based kernel choice alone
# mov eax, [rip + rel32]; test eax, eax; js: the flag read that opens mkl_serv_intel_cpu_true
_FLAG_READ, _AFTER_READ = b"\x8b\x05", b"\x85\xc0\x78"
NOT_ASKED = -1  # the flag's value until MKL first asks (at its first product)


@functools.cache
def _vendor_check() -> int | None:
    """The address of MKL's ``mkl_serv_intel_cpu_true`` inside libtorch_cpu, or None where
    torch has no MKL or no such function (looked up once per process)."""
    if platform.machine() not in ("x86_64", "AMD64") or not torch.backends.mkl.is_available():
        return None
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        return ctypes.cast(lib.mkl_serv_intel_cpu_true, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


def mkl_says_intel() -> bool:
    """MKL's own answer to "is this an Intel CPU?" (the flag once set, CPUID before)."""
    address = _vendor_check()
    return address is not None and ctypes.CFUNCTYPE(ctypes.c_int)(address)() == 1


def _vendor_flag() -> ctypes.c_int | None:
    """MKL's cached answer of `mkl_says_intel` inside libtorch_cpu, or None where this build's
    MKL does not read it as expected (or has no MKL)."""
    address = _vendor_check()
    if address is None:
        return None
    code = ctypes.string_at(address, 9)
    if code[:2] != _FLAG_READ or code[6:9] != _AFTER_READ:
        return None
    offset = int.from_bytes(code[2:6], "little", signed=True)
    return ctypes.c_int.from_address(address + 6 + offset)


def prefer_feature_dispatch() -> str:
    """Let MKL choose its kernels by CPU features (see the module docstring); returns what
    was done, in words."""
    if os.environ.get(ENV) == "keep":
        return f"MKL's own kernel choice ({ENV}=keep)"
    flag = _vendor_flag()
    if flag is None:
        return "MKL's own kernel choice (no known MKL vendor check in this torch build)"
    if flag.value != NOT_ASKED:  # asked at MKL's first product, which chose its kernels then
        return "MKL's own kernel choice (a product ran before the harness was imported)"
    if mkl_says_intel():
        return "MKL's own kernel choice (an Intel CPU)"
    flag.value = 1
    return "MKL kernels chosen by CPU features (its vendor check set aside; see core/blas.py)"


STATUS = prefer_feature_dispatch()
