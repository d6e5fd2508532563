"""Image benchmark: train every (data set, architecture, objective, seed), score the samples
with FID/KID (and IS where meaningful) through torch-fidelity, and write the paper's table.

    python -m sweeps.fid --dataset mnist5k --models gan,mmdnet,mmdgan,gram --preset smoke --jobs 2
    python -m sweeps.fid --dataset cifar10 --models gan,mmdgan,gram --arch dcgan,weaker --seeds 0,1,2 \\
        --data-root ~/data --fid-weights ~/weights/weights-inception-2015-12-05-6726825d.pth --devices cuda:0

Each run is written atomically to ``<out>/fid/<dataset>/<arch>/<model>/seed<k>/`` (see
`sweeps.records`) with its metrics, the feature extractor's label and its samples as uint8
(``samples_uint8.npz``). Rerunning skips finished runs (``--force`` recomputes); crashed runs
are retried and make the exit code 1. The table (rows arch x data set, columns objectives,
mean +- std over seeds, best per row in bold; CSV, markdown, LaTeX) and sample grids are
drawn at the end by `analysis.fid_table` under ``<out>/fid/tables`` and ``figures``.

Feature extractors (``--features``): ``inception`` is torch-fidelity's Inception-v3, whose
weights come from ``--fid-weights PATH`` or a download; ``offline`` is a CNN classifier
trained here on the labelled real images (cached in ``<out>/fid/cache``). ``auto`` (default)
takes ``offline`` for ``mnist5k`` and ``inception`` otherwise. Every number is labelled with
its extractor: offline FIDs are not Inception FIDs.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import data
import models
import objectives
from analysis.fid import SAMPLES_FILE, FeatureError, FeatureSpec, OfflineConfig, image_metrics, resolve_features
from data.images import DATA_ROOT_ENV, DatasetMissing, to_uint8
from sweeps.cli import (Parser, UsageError, add_plugin_arg, fail, load_plugins,
                        parse_int_list, parse_names, parse_overrides)
from sweeps.parallel import (Placement, add_placement_args, crash_exit_code, placement_from_args,
                             run_with_progress)
from sweeps.records import clean_partial, ensure_writable, is_finished
from sweeps.runner import RunConfig, Trainer
from sweeps.stability import Cell, make_stacks, parse_models, peak_rss_mb, record_crash

PRESETS: dict[str, dict[str, Any]] = {
    # "full" is our choice of length (about 38 epochs of CIFAR-10 at batch 64), not the paper's.
    "full": {"steps": 30_000, "batch": 64, "n_samples": 10_000, "width": 128},
    # sized for a 2-core CPU: 4 objectives x 3 seeds of mnist5k in about 10-15 minutes with --jobs 2
    "quick": {"steps": 500, "batch": 64, "n_samples": 10_000, "width": 64},
    "smoke": {"steps": 40, "batch": 64, "n_samples": 10_000, "width": 64},
}


@dataclass(frozen=True)
class Scoring:
    """How a data set's samples are scored: extractor, KID subset size, real-feature cache."""

    spec: FeatureSpec
    kid_subset_size: int
    cache_root: Path
    real_name: str  # identifies the real images in the feature cache


@dataclass(frozen=True)
class Task:
    """One stack of runs to train and score."""

    cells: list[Cell]
    scoring: Scoring


def dataset_dir(name: str) -> str:
    """A directory name for a data set: ``cifar10`` -> ``cifar10``; ``folder:/a/b`` -> ``folder-b-<hash>``."""
    if re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.split(":", 1)[-1]).name).strip("_") or "data"
    return f"{name.split(':', 1)[0]}-{stem}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def build_cells(models_: Sequence[str], datasets: Sequence[str], archs: Sequence[str], seeds: Sequence[int],
                base: RunConfig, root: Path) -> list[Cell]:
    """Every (data set, architecture, objective, seed), recorded under ``root/fid/...``."""
    return [Cell(replace(base, model=m, dataset=d, arch=a, seed=s),
                 root / "fid" / dataset_dir(d) / a / m / f"seed{s}", a)
            for d in datasets for a in archs for m in models_ for s in seeds]


def score(images: np.ndarray, real: Any, scoring: Scoring, device: str) -> dict[str, float]:
    """FID/KID/IS of uint8 samples against the real images, with the real features cached."""
    return image_metrics(images, real, scoring.spec, device=device, kid_subset_size=scoring.kid_subset_size,
                         cache_root=scoring.cache_root, real_name=scoring.real_name)


def train_and_score(task: Task, device: str) -> list[dict[str, Any]]:
    """Worker: train one stack, score and record each run; a crash is recorded, not raised."""
    from sweeps.evaluate import save_outcome
    t0 = time.perf_counter()
    try:
        trainer = Trainer([c.config for c in task.cells], device)
        trainer.train()
        real = trainer.dataset.images_uint8()
        results = []
        outcomes = trainer.outcomes()
        for cell, outcome in zip(task.cells, outcomes):
            images = to_uint8(np.nan_to_num(outcome.samples, posinf=1.0, neginf=-1.0))
            metrics = score(images, real, task.scoring, device) if outcome.status == "ok" else {}
            extra = {"cell": cell.label, "metrics": metrics, "features": task.scoring.spec.label,
                     "features_key": task.scoring.spec.key, "peak_rss_mb": peak_rss_mb()}

            def add_samples(tmp: Path, images: np.ndarray = images) -> None:
                np.savez_compressed(tmp / SAMPLES_FILE, images=images)
            record = save_outcome(replace(outcome, samples=None), cell.path, extra, add_samples)
            results.append({"path": str(cell.path), "status": record["status"], "reason": record["reason"],
                            "metrics": metrics, "wall": time.perf_counter() - t0})
        return results
    except Exception as err:  # noqa: BLE001 - every crash is recorded and reported by the parent
        return record_crash(task.cells, device, err, t0)


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.fid", description=__doc__.split("\n\n")[0],
               epilog="Image hyperparameters default to each objective's defaults['image']; "
                      "override any with --set KEY=VALUE. See docs/images-and-fid.md.")
    p.add_argument("--dataset", default="cifar10",
                   help="image data set(s), comma list: mnist5k (embedded, offline), mnist, cifar10, "
                        "celeba, celeba32, folder:PATH[:SIZE] (default cifar10)")
    p.add_argument("--models", default="mmdgan,gan,gram",
                   help="objectives (table columns): comma list or 'all' (default mmdgan,gan,gram)")
    p.add_argument("--arch", default="dcgan", help="architecture(s), comma list: dcgan, weaker, mlp (default dcgan)")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default 0,1,2)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full",
                   help="full (default: 30,000 steps, width 128), quick (500 steps, width 64: CPU-sized) "
                        "or smoke (40 steps, width 64)")
    p.add_argument("--steps", type=int, help="generator steps per run (default: the preset's)")
    p.add_argument("--batch", type=int, help="batch size (default 64)")
    p.add_argument("--samples", type=int, help="generated images scored per run (default 10000)")
    p.add_argument("--noise-dim", type=int, default=128, help="noise dimension (default 128)")
    p.add_argument("--noise", choices=["uniform", "normal"], default="uniform",
                   help="noise distribution (default uniform in [-1, 1], as the authors' image code)")
    p.add_argument("--width", type=int,
                   help="channels of the widest conv layer (128: generator 128-64-32, critic 32-64-128; "
                        "weaker halves them); the hidden width for --arch mlp (default: full 128, quick/smoke 64)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter in every run")
    p.add_argument("--features", choices=["auto", "offline", "inception"], default="auto",
                   help="feature extractor: auto (default: offline for mnist5k, else inception), offline "
                        "(a CNN trained here on the labelled data) or inception (torch-fidelity's Inception-v3)")
    p.add_argument("--fid-weights", metavar="PATH",
                   help="local Inception-v3 weights for torch-fidelity (weights-inception-2015-12-05-6726825d.pth); "
                        "without it they are downloaded")
    p.add_argument("--extractor-epochs", type=int, default=OfflineConfig.epochs,
                   help=f"training epochs of the offline extractor (default {OfflineConfig.epochs})")
    p.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (default 1000)")
    p.add_argument("--data-root", help=f"folder holding the data sets (default ${DATA_ROOT_ENV} or ./datasets)")
    p.add_argument("--download", action="store_true", help="download missing torchvision data sets into --data-root")
    add_placement_args(p, "runs")
    p.add_argument("--max-stack", type=int, default=1,
                   help="most seeds trained as one stacked model (default 1: conv runs gain nothing from stacking)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root (default results/)")
    p.add_argument("--cache-dir", type=Path, help="feature extractor and real-feature cache (default <out>/fid/cache)")
    p.add_argument("--force", action="store_true", help="recompute runs that already have a record")
    p.add_argument("--no-table", action="store_true", help="skip the tables and sample grids at the end")
    add_plugin_arg(p)
    return p


def load_datasets(names: Sequence[str], root: str | None, download: bool) -> dict[str, Any]:
    """Every named image set, loaded now so a missing one fails before any training."""
    out = {}
    for name in names:
        if not data.known(name):
            raise UsageError(f"unknown dataset {name!r}; choose from mnist5k, mnist, cifar10, celeba, celeba32, "
                             "folder:PATH[:SIZE]")
        if getattr(data.get(name), "kind", None) != "image":
            raise UsageError(f"{name} is not an image data set (use python -m sweeps.stability for toy data)")
        ds = data.get(name, root=root, download=download)
        try:
            ds.train_set(0)
        except DatasetMissing as err:
            raise UsageError(str(err)) from None
        out[name] = ds
    return out


def plan(args) -> tuple[list[Cell], dict[str, Scoring], Placement]:
    """Validate the command line into runs, per-data-set scoring and a placement."""
    load_plugins(args.plugin)
    model_names = parse_models(args.models)
    archs = parse_names(args.arch, "--arch")
    unknown = [a for a in archs if a not in models.ARCHITECTURES]
    if unknown:
        raise UsageError(f"unknown architecture {', '.join(unknown)}; choose from {', '.join(models.ARCHITECTURES)}")
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if min(args.max_stack, args.kid_subset_size, args.extractor_epochs) < 1:
        raise UsageError("--max-stack, --kid-subset-size and --extractor-epochs must be at least 1")
    placement = placement_from_args(args)
    preset = PRESETS[args.preset]
    try:
        given = {"steps": args.steps, "batch": args.batch, "n_samples": args.samples, "width": args.width}
        sizes = {k: preset[k] if v is None else v for k, v in given.items()}
        base = RunConfig(**sizes, noise_dim=args.noise_dim, noise=args.noise,
                         hp=tuple(parse_overrides(args.set).items()))
        for m in model_names:
            objectives.hyperparameters(m, "image", dict(base.hp))
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    if args.data_root:
        os.environ[DATA_ROOT_ENV] = str(Path(args.data_root).expanduser().resolve())  # workers inherit it
    datasets = load_datasets(parse_names(args.dataset, "--dataset"), args.data_root, args.download)
    for ds in datasets.values():
        for arch in archs:  # e.g. an image too small for the conv layout
            try:
                models.NetFactory(models.ArchConfig(arch=arch), ds.x_shape, [1], [0]).generator()
            except ValueError as err:
                raise UsageError(f"{ds.name} with --arch {arch}: {err}") from None
    ensure_writable(args.out)
    cells = build_cells(model_names, list(datasets), archs, seeds, base, args.out)
    cache = args.cache_dir or args.out / "fid" / "cache"
    scoring = {}
    for name, ds in datasets.items():
        if not any(args.force or not is_finished(c.path) for c in cells if c.config.dataset == name):
            continue  # nothing to score: do not train or load an extractor
        try:
            spec = resolve_features(args.features, ds, args.fid_weights, cache,
                                    OfflineConfig(epochs=args.extractor_epochs),
                                    log=lambda msg: print(msg, file=sys.stderr))
        except FeatureError as err:
            raise UsageError(str(err)) from None
        real_hash = hashlib.sha256(ds.images_uint8().numpy().tobytes()).hexdigest()[:12]
        scoring[name] = Scoring(spec, args.kid_subset_size, cache, f"{dataset_dir(name)}-{real_hash}")
    return cells, scoring, placement


def score_summary(m: dict[str, Any]) -> str:
    return ", ".join(f"{k} {m[k]:.3g}" for k in ("fid", "kid", "isc") if k in m)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cells, scoring, placement = plan(args)
    except (UsageError, PermissionError) as err:
        fail(parser.prog, str(err))

    root = args.out / "fid"
    clean_partial(root)
    todo = [c for c in cells if args.force or not is_finished(c.path)]
    print(f"{len(cells)} runs ({len(cells) - len(todo)} already finished), "
          f"{placement.workers} worker(s) on {','.join(placement.devices)}", file=sys.stderr)
    tasks = [Task(stack, scoring[stack[0].config.dataset])
             for stack in make_stacks(todo, placement.workers, args.max_stack)]
    t0 = time.perf_counter()
    results = run_with_progress(train_and_score, tasks, placement, len(todo), "run", root, score_summary)
    if todo:
        print(f"trained and scored {len(todo)} runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    if not args.no_table:
        from analysis.fid_table import report
        print(report(root, models=list(dict.fromkeys(c.config.model for c in cells))))
    return crash_exit_code(results, "run")


if __name__ == "__main__":
    sys.exit(main())
