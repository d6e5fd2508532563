"""MKL's kernel choice (`core.blas`): set aside its vendor check before the first product, in
every process that imports the engine, and leave it alone when asked or when too late.

Each case runs in a fresh interpreter: MKL chooses its kernels once per process."""
from pathlib import Path

import pytest
from builders import fresh_python as _python

from core import blas

APPLIED = "MKL kernels chosen by CPU features"


CPUINFO = Path("/proc/cpuinfo")
INTEL = "GenuineIntel" in CPUINFO.read_text() if CPUINFO.exists() else None
PRODUCT = "import torch\ntorch.randn(64, 64) @ torch.randn(64, 64)\n"  # MKL's first product: it picks its kernels
REPORT = "from core import blas; print(blas.STATUS); print(blas.mkl_says_intel())"
applies_here = pytest.mark.skipif(blas._vendor_flag() is None, reason="no known MKL vendor check in this torch build")


@applies_here
def test_importing_the_engine_lets_mkl_choose_by_features_before_any_product():
    status, intel = _python("import engine\n" + PRODUCT + REPORT).splitlines()
    assert status == "MKL's own kernel choice (an Intel CPU)" if INTEL else status.startswith(APPLIED)
    assert intel == "True"


@applies_here
def test_the_environment_keeps_mkls_own_choice():
    status, intel = _python("import engine\n" + REPORT, **{blas.ENV: "keep"}).splitlines()
    assert status == f"MKL's own kernel choice ({blas.ENV}=keep)"
    assert intel == str(INTEL)  # untouched: MKL's own answer from CPUID


@applies_here
def test_a_product_before_the_import_leaves_mkls_choice_alone():
    """MKL has chosen its kernels by then: changing the flag would only misreport them."""
    out = _python(PRODUCT + "import engine\n" + REPORT).splitlines()
    assert out[0] == "MKL's own kernel choice (a product ran before the harness was imported)"


def test_every_record_says_which_kernels_made_it():
    from store import provenance
    assert provenance()["blas"] == blas.STATUS
