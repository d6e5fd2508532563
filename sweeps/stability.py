"""Stability sweep: train every cell of a grid (noise dimension x generator width by default).

    python -m sweeps.stability --models gram --jobs 2
    python -m sweeps.stability --models gan,mmdnet,mmdgan,gram --dataset ring2d,ring3d --jobs 2
    python -m sweeps.stability --models all --dataset ring3d --seeds 0,1,2
    python -m sweeps.stability --models gram,mmdgan --dataset ring3d --grid df=2,4,8,16
    python -m sweeps.stability --config experiments/paper-ring.toml --jobs 2    # an experiment file

Each (objective, cell, seed) is recorded atomically at
``<out>/stability/<setting>/<dataset>/<objective>_<hp>/<cell>/seed<k>/`` (see `store.records`):
runs of another setting (steps, batch, ``--set`` values, ...) never share a directory.
Rerunning the same command skips finished cells, so a killed sweep resumes where it
stopped; ``--force`` recomputes. Cells whose training diverges are recorded as
``diverged`` with the reason; a crash inside a cell is recorded as ``crashed`` (retried on
the next run) and makes the exit code 1. At the end `analysis.stability` draws figures and
tables into ``<out>/stability/<setting>/<dataset>/``.

Cells of one objective that differ only in seed, noise dimension and generator width train
together as one batched model (``--max-stack``; see `engine.trainer`). Which cells share a stack follows
from the grid and ``--max-stack`` alone, so ``--jobs`` and interruptions never change a
number; ``--max-stack`` does (up to float rounding), and each record names its stack.
Ctrl-C or SIGTERM stops the workers and exits (130/143); rerun to resume: each unfinished
stack continues from its last checkpoint (``--checkpoint-minutes``, see `sweeps.longrun`,
which also gives ``--eval-every`` for ring metrics over steps and ``--tensorboard``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from core import paper
from sweeps.sweep import Sweep


class StabilitySweep(Sweep):
    name = "stability"
    doc = __doc__
    kinds = ("toy",)
    axes = ("noise_dim", "width")
    defaults = {"models": "gram", "dataset": "ring2d", "seeds": "0", "max_stack": 16}
    epilog = (f"Defaults reproduce the paper: ring2d, noise dims {','.join(map(str, paper.RING_GRID['noise_dim']))} x "
              f"widths {','.join(map(str, paper.RING_GRID['width']))}, {paper.RING_STEPS:,} generator steps at batch "
              f"{paper.RING_BATCH}, the authors' hyperparameters per objective (experiments/stability-full.toml, "
              "after experiments/paper-ring.toml: the paper's whole ring experiment, --config "
              "experiments/paper-ring.toml). See docs/experiments.md.")

    def reporter(self, root: Path) -> str | None:
        from analysis.stability import report
        return report(root)


def main(argv: list[str] | None = None) -> int:
    return StabilitySweep().main(argv)


if __name__ == "__main__":
    sys.exit(main())
