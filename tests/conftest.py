"""Shared test settings: small thread counts so the suite behaves on a 2-core CI machine."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


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
