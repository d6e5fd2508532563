"""Image benchmark: train every (data set, architecture, objective, seed), score the samples
with FID/KID (and IS where meaningful) through torch-fidelity, and write the paper's table.

    python -m sweeps.fid --dataset mnist5k --models gan,mmdnet,mmdgan,gram --preset smoke --jobs 2
    python -m sweeps.fid --dataset cifar10 --models gan,mmdgan,gram --arch dcgan,weaker --seeds 0,1,2 \\
        --data-root ~/data --fid-weights ~/weights/weights-inception-2015-12-05-6726825d.pth --devices cuda:0

Each run is recorded atomically at ``<out>/fid/<setting>/<dataset>/<objective>_<hp>/<cell>/seed<k>/``
(see `store.records`) with its metrics, the feature extractor's label and its samples as
uint8 images. Rerunning skips finished runs of the same configuration (``--force``
recomputes); crashed runs are retried and make the exit code 1. The table (rows: the grid
cells and data sets, columns: objectives, mean +- std over seeds; CSV, markdown, LaTeX) and
sample grids are drawn at the end by `analysis.fid_table` under ``<out>/fid/<setting>/``.

Feature extractors (``--features``): ``inception`` is torch-fidelity's Inception-v3, whose
weights come from ``--fid-weights PATH`` or a download; ``offline`` is a CNN classifier
trained here on the labelled real images (cached in ``<out>/fid/cache``). ``auto`` (default)
takes each data set's own default: ``offline`` for ``mnist5k``, ``inception`` otherwise.
Every number is labelled with its extractor: offline FIDs are not Inception FIDs.
Precision and recall are computed in the same feature space (`metrics.images`).

Long runs (`sweeps.longrun`): checkpoints every ``--checkpoint-minutes`` (a killed sweep
rerun the same way resumes each run from its last one), ``--eval-every N`` for FID, KID,
precision and recall over training steps (``metrics_over_steps.csv``, drawn by the
report), ``--tensorboard`` for a live view. ``python -m sweeps.rescore`` scores stored
runs again, e.g. with ``--fid-weights``, without retraining.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cli import UsageError
from sweeps.sweep import Sweep

if TYPE_CHECKING:
    from sweeps.worker import Cell, Evaluator


class FidSweep(Sweep):
    name = "fid"
    unit = "run"
    doc = __doc__
    kinds = ("image",)
    axes = ("arch",)
    defaults = {"models": "mmdgan,gan,gram", "dataset": "cifar10", "arch": "dcgan", "seeds": "0,1,2",
                "noise": "uniform", "max_stack": 1}
    options = ("features", "fid_weights", "extractor_epochs", "kid_subset_size", "cache_dir", "data_root", "download")
    epilog = ("Presets and the image table are experiment files: experiments/fid-*.toml (docs/experiments.md). "
              "--widths is the channel count of the widest conv layer (128: generator 128-64-32, critic "
              "32-64-128; weaker halves them). Image hyperparameters default to each objective's "
              "defaults['image']; override any with --set KEY=VALUE. See docs/images-and-fid.md.")

    def dataset_names(self) -> list[str]:
        return [*super().dataset_names(), "folder:PATH[:SIZE]"]

    def prepare(self, args: argparse.Namespace, datasets: list[str], todo: Sequence[Cell]) -> dict[str, Evaluator]:
        """Load every data set now (a missing one fails before any training), check that the
        architectures fit it, and set up the scoring of those with runs to train."""
        import models
        import store
        from sweeps.inputs import image_scoring, open_dataset
        from sweeps.worker import EvaluateImages
        cache = args.cache_dir or args.out / "fid" / "cache"
        store.ensure_writable(cache)
        evaluators: dict[str, Evaluator] = {}
        for name in datasets:
            ds = open_dataset(name, args.data_root, args.download)
            for arch in {c.config.arch for c in todo if c.config.dataset == name}:  # e.g. an image too small
                try:
                    models.NetFactory(models.ArchConfig(arch=arch), ds.x_shape, [1], [0]).generator()
                except ValueError as err:
                    raise UsageError(f"{name} with --arch {arch}: {err}") from None
            if not any(c.config.dataset == name for c in todo):
                continue  # nothing to score: do not train or load an extractor
            evaluators[name] = EvaluateImages(image_scoring(args, ds, store.dataset_dir(name), cache))
        return evaluators

    def reporter(self, root: Path) -> str | None:
        from analysis.fid_table import report
        return report(root)


def main(argv: list[str] | None = None) -> int:
    sweep = FidSweep()
    parser = sweep.build_parser()
    args = parser.parse_args(argv)
    from sweeps.inputs import data_root_env
    os.environ.update(data_root_env(args.data_root))  # the workers open the data sets by name
    return sweep.start(parser, args)


if __name__ == "__main__":
    sys.exit(main())
