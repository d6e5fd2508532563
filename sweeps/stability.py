"""Stability sweep: train every cell of a grid (noise dimension x generator width by default).

    python -m sweeps.stability --models gram --jobs 2
    python -m sweeps.stability --models gan,mmdnet,mmdgan,gram --dataset ring2d,ring3d --jobs 2
    python -m sweeps.stability --models all --dataset ring3d --seeds 0,1,2
    python -m sweeps.stability --models gram,mmdgan --dataset ring3d --grid df=2,4,8,16

Each (objective, cell, seed) is recorded atomically at
``<out>/stability/<setting>/<dataset>/<objective>_<hp>/<cell>/seed<k>/`` (see `store.records`):
runs of another setting (steps, batch, ``--set`` values, ...) never share a directory.
Rerunning the same command skips finished cells, so a killed sweep resumes where it
stopped; ``--force`` recomputes. Cells whose training diverges are recorded as
``diverged`` with the reason; a crash inside a cell is recorded as ``crashed`` (retried on
the next run) and makes the exit code 1. At the end `analysis.stability` draws figures and
tables into ``<out>/stability/<setting>/<dataset>/``.

Cells of one objective that differ only in seed and noise dimension train together as one
batched model (``--max-stack``; see `engine.trainer`). Which cells share a stack follows
from the grid and ``--max-stack`` alone, so ``--jobs`` and interruptions never change a
number; ``--max-stack`` does (up to float rounding), and each record names its stack.
Ctrl-C or SIGTERM stops the workers and exits (130/143); rerun to resume: each unfinished
stack continues from its last checkpoint (``--checkpoint-minutes``, see `sweeps.longrun`,
which also gives ``--eval-every`` for ring metrics over steps and ``--tensorboard``).
"""
from __future__ import annotations

import sys

from analysis.stability import report
from engine import field_default
from sweeps.sweep import Sweep

STEPS = field_default("steps")  # the paper's 10,500: 35 epochs of 60,000 points at batch 200
PAPER_GRID = {"noise_dims": [2, 4, 8, 16], "widths": [20, 100, 200]}


class StabilitySweep(Sweep):
    name = "stability"
    doc = __doc__
    kinds = ("toy",)
    axes = ("noise_dim", "width")
    presets = {
        "full": {"about": f"the paper's grid and length, {STEPS} steps (default)", "steps": STEPS,
                 "batch": field_default("batch"), "n_samples": field_default("n_samples"), **PAPER_GRID},
        "quick": {"about": "the paper's grid, 3,000 steps", "steps": 3_000, "batch": field_default("batch"),
                  "n_samples": field_default("n_samples"), **PAPER_GRID},
        "smoke": {"about": "a 2 x 2 grid, 40 steps at batch 64 (seconds; tests and demos)", "steps": 40,
                  "batch": 64, "n_samples": field_default("n_samples"), "noise_dims": [2, 8], "widths": [20, 100]},
    }
    defaults = {"models": "gram", "dataset": "ring2d", "arch": field_default("arch"), "seeds": "0",
                "noise": field_default("noise"), "max_stack": 16}
    epilog = ("Defaults reproduce the paper: ring2d, noise dims 2,4,8,16 x widths 20,100,200, 10,500 generator "
              "steps at batch 200, the authors' hyperparameters per objective.")

    reporter = staticmethod(report)


def main(argv: list[str] | None = None) -> int:
    return StabilitySweep().main(argv)


if __name__ == "__main__":
    sys.exit(main())
