"""A record names the objective plugins it trained with, so reusing and rescoring it load
them; a plugin file that is gone is one line. ``sweeps.bench`` takes ``--plugin`` too."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import plugin_source, write

from sweeps import bench, stability

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("isolated_registry")


def python(*args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter (no plugin registered yet), this worktree on its path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_reuse_and_rescore_load_the_plugin_a_record_names(tmp_path, capsys):
    plugin = write(tmp_path / "moments.py", plugin_source("moments-reuse"))
    out = tmp_path / "out"
    assert stability.main(["--model", "moments-reuse", "--plugin", str(plugin), "--preset", "smoke",
                           "--noise-dims", "2", "--widths", "20", "--samples", "200", "--out", str(out),
                           "--no-figures"]) == 0
    cell, = (out / "stability").glob("*/ring2d/*/*/seed0")
    assert __import__("store").read(cell).run["plugins"] == [str(plugin.resolve())]
    loaded = python("-c", f"from sweeps.reuse import load_generator; print(load_generator({str(cell)!r}).sample(7)"
                          ".shape)")
    assert loaded.returncode == 0 and loaded.stdout.strip() == "(7, 2)", loaded.stderr
    plugin.unlink()
    gone = python("-m", "sweeps.rescore", str(out), "--samples", "200", "--no-figures")
    assert gone.returncode == 2
    line, = gone.stderr.strip().splitlines()
    assert line.endswith(f"{cell} was trained with the objective plugin {plugin.resolve()}, which is gone; "
                         "put the file back to rebuild the run")


def test_bench_times_a_plugin_objective(tmp_path, capsys):
    plugin = write(tmp_path / "moments.py", plugin_source("moments-bench"))
    assert bench.main(["--plugin", str(plugin), "--models", "moments-bench", "--stack", "1", "--timed-steps", "2",
                       "--warmup", "1", "--repeats", "1", "--naive", "none", "--out", str(tmp_path / "b")]) == 0
    assert "moments-bench" in capsys.readouterr().out
