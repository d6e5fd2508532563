"""Shared test settings: small thread counts so the suite behaves on a 2-core CI machine.

The tests are grouped by the floor of the house they cover, one folder each, numbered from
the ground up (the numbers also keep the folders from shadowing the packages they test):
``0_core/`` (random streams, files), ``1_data_models/`` (data sets, networks),
``2_objectives/`` (kernel math, each objective against its authors' formulas, the contract),
``3_engine/`` (graphs, precision, EMA), ``4_metrics_store/`` (ring and image metrics, the
catalog, records, checkpoints), ``5_cli/`` (the option table), ``6_analysis/`` (tables,
figures, claims) and ``7_commands/`` (whole commands, run in-process or as processes:
sweeps, resuming, safety); ``test_layers.py`` guards the import direction between them.
Everything under ``7_commands/`` is marked ``slow``: ``uv run pytest -m "not slow"`` runs the other floors in
about two minutes; ``uv run pytest`` (CI, the README) runs everything."""
import os
import sys
from pathlib import Path

import pytest
import torch

from core import allocator, blas  # noqa: F401  (MKL's kernels and malloc as in every training process: before any product)

ROOT = Path(__file__).resolve().parents[1]
SLOW = ROOT / "tests" / "7_commands"
torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the whole-command tests ``slow`` (see the module docstring)."""
    for item in items:
        if SLOW in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def run_cli():
    """Run ``python -m MODULE ARGS`` from the repository root; returns the CompletedProcess."""
    import subprocess

    def run(module: str, *args: str, timeout: float = 300, cwd: Path | None = None):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd or ROOT, env=env)
    return run


@pytest.fixture
def isolated_registry():
    """Objectives a test registers (plugins) are forgotten afterwards; torch's thread count
    (which a sweep sets) is restored."""
    from objectives import registry
    before, threads = set(registry.REGISTRY), torch.get_num_threads()
    yield
    for name in set(registry.REGISTRY) - before:
        registry.unregister(name)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    """One folder of offline feature extractors and real-image features for the session
    (the image tests train the 1-epoch extractor once)."""
    return tmp_path_factory.mktemp("fidcache")
