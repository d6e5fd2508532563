"""Train one run of one objective and store everything about it.

    python -m sweeps.train --models gram --dataset ring2d --noise-dims 4 --widths 100 --steps 3000 --seed 0

A single run goes through the sweeps' one worker (`sweeps.worker.run_task`) as a stack of
one: its record is written like a sweep cell's (`store.records`), at a path made from its
configuration, ``<out>/train/<setting>/<dataset>/<objective>_<hp>/default/seed<k>/`` (the
last line printed names it), so runs of different configurations never share a folder
and a rerun of the same configuration reuses its finished record (``--force`` trains it
again). A crash is recorded as ``crashed`` with its traceback (exit code 1) and retried
by the next run. Besides the record's files (per-step diagnostics CSV, generator
weights, 10,000 samples, metrics, the complete configuration) the run draws
``samples.png`` (samples over data), ``trace.png`` (the per-step diagnostics,
`analysis.traces`) and, with ``--snapshot-steps``, ``process.png`` (data and projected
space over training, `analysis.process`), then prints the ring metrics.

A long run writes a checkpoint every ``--checkpoint-minutes`` (default 10) in its
setting's ``.checkpoints/`` (`store.stack_checkpoint`); rerunning the same command after
a kill resumes from it and ends with the same samples as a run never stopped.
``--eval-every N`` stores the ring metrics over training steps
(``metrics_over_steps.csv``, drawn as ``metrics_over_steps.png``) and ``--tensorboard`` a
live view (see `sweeps.longrun`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

import objectives
import store
from analysis.curves import save_curves
from analysis.figures import save_scatter
from analysis.process import config_title, save_process
from analysis.traces import write_traces
from cli import (Parser, UsageError, add_data_args, add_models_arg, add_out_arg, add_plugin_arg, check_counts,
                 check_device, clean_exit, fail, load_plugins, open_dataset, parse_int_list, parse_models,
                 parse_overrides)
from engine import RunConfig, RunOutcome, field_default
from metrics.ring import reference_samples
from sweeps.longrun import LongRun, add_long_run_args, long_run_from_args
from sweeps.parallel import crash_exit_code
from sweeps.worker import Cell, evaluate_samples, run_task, stack_tasks

SWEEP = "train"  # the records' sweep and the folder below --out that holds them
DEFAULT = field_default


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.train", description=__doc__.split("\n\n")[0],
               epilog="Hyperparameters default to the paper's per objective and data kind "
                      "(see objectives/*.py); override any with --set KEY=VALUE.")
    add_models_arg(p, DEFAULT("model"), single=True)
    p.add_argument("--dataset", default=DEFAULT("dataset"),
                   help=f"data set, e.g. ring2d, ring3d, grid, mnist5k (default {DEFAULT('dataset')})")
    p.add_argument("--arch", default=DEFAULT("arch"), help=f"network architecture (default {DEFAULT('arch')})")
    p.add_argument("--noise-dims", "--noise-dim", dest="noise_dim", type=int, default=DEFAULT("noise_dim"),
                   help=f"generator noise dimension (default {DEFAULT('noise_dim')})")
    p.add_argument("--widths", "--width", dest="width", type=int, default=DEFAULT("width"),
                   help=f"generator hidden width (default {DEFAULT('width')})")
    p.add_argument("--depth", type=int, default=DEFAULT("depth"),
                   help=f"generator hidden layers (default {DEFAULT('depth')})")
    p.add_argument("--steps", type=int, default=DEFAULT("steps"),
                   help=f"generator steps (default {DEFAULT('steps')} = 35 epochs of 60k points at batch 200)")
    p.add_argument("--batch", type=int, default=DEFAULT("batch"),
                   help=f"batch size, real and generated (default {DEFAULT('batch')})")
    p.add_argument("--seed", type=int, default=DEFAULT("seed"),
                   help="seed for data, init, noise and batches (default 0)")
    p.add_argument("--noise", default=DEFAULT("noise"), choices=["normal", "uniform"],
                   help=f"noise distribution (default {DEFAULT('noise')})")
    p.add_argument("--samples", type=int, default=DEFAULT("n_samples"),
                   help=f"samples drawn at the end (default {DEFAULT('n_samples')})")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter, e.g. lr=5e-4")
    p.add_argument("--snapshot-steps", default="",
                   help="comma list of steps at which to store samples and projected points "
                        "(snapshots.npz; 0 = before training), e.g. 0,500,3000")
    p.add_argument("--devices", "--device", dest="device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1, fastest for these small networks)")
    add_data_args(p)
    add_out_arg(p, Path("results"), f"results root; the record goes to OUT/{SWEEP}/<setting>/<dataset>/"
                                    "<objective>_<hp>/default/seed<k>/, a folder of its configuration's own")
    p.add_argument("--force", action="store_true", help="train again when a finished record of this configuration "
                                                        "exists (default: reuse it)")
    add_plugin_arg(p)
    add_long_run_args(p)
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate the arguments into a `RunConfig` (after ``--plugin`` is loaded); bad input raises `UsageError`."""
    model, = parse_models(args.models, single=True)
    try:
        return RunConfig(model=model, dataset=args.dataset, arch=args.arch, noise_dim=args.noise_dim,
                         width=args.width, depth=args.depth, steps=args.steps, batch=args.batch, seed=args.seed,
                         noise=args.noise, n_samples=args.samples, hp=tuple(parse_overrides(args.set).items()))
    except ValueError as err:
        raise UsageError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with clean_exit(parser.prog, "; nothing was recorded"):
        return run(parser, args)


def draw_figures(outcome: RunOutcome, dataset: Any, curves: pd.DataFrame | None, folder: Path) -> None:
    """A single run's figures, drawn into its record's ``folder`` (`sweeps.worker.Figures`):
    samples.png (toy data), trace.png, process.png when snapshots were taken and
    metrics_over_steps.png with ``--eval-every``. A figure that fails to draw is reported,
    never allowed to lose the trained run."""
    cfg = outcome.config
    title = config_title(cfg.to_dict())
    try:
        if dataset.kind == "toy":
            ref = reference_samples(dataset, cfg.seed, 2_000)
            save_scatter(folder / "samples.png", ref, outcome.samples, f"{title}, step {cfg.steps}")
        write_traces([(title, store.load_trace(folder), objectives.get(cfg.model).describe())], folder / "trace.png")
        if outcome.snapshots:
            save_process(folder, folder / "process.png", snaps=outcome.snapshots, title=title)
        if curves is not None and len(curves):
            save_curves([(title, curves)], folder / "metrics_over_steps.png")
    except Exception as err:  # noqa: BLE001 - the record matters more than its pictures
        print(f"warning: could not draw a figure: {type(err).__name__}: {err}", file=sys.stderr)


def lacking(record: Path, snapshot_steps: list[int], options: LongRun) -> list[str]:
    """The options of this command whose outputs the finished record at ``record`` lacks
    (snapshots at other steps, no metrics over steps at this interval, no live view): they
    are not part of a configuration, so asking for them trains the run again."""
    missing = []
    if snapshot_steps:
        try:
            stored = store.load_snapshots(record)["steps"].tolist()
        except FileNotFoundError:
            stored = []
        if stored != sorted(set(snapshot_steps)):
            missing.append("--snapshot-steps")
    run = store.read(record).run
    if options.eval_every and (run.get("eval_every"), run.get("eval_samples")) != (options.eval_every,
                                                                                    options.eval_samples):
        missing.append("--eval-every")
    if options.tensorboard and not (record / "tensorboard").is_dir():
        missing.append("--tensorboard")
    return missing


def summary(record: store.Record) -> str:
    """What the run printed when it finished: status, time, ring metrics, the record's path."""
    line = f"status: {record.status}" + (f": {record.reason}" if record.reason else "")
    wall = record.run.get("wall_time_s")
    if record.finished and wall is not None:
        steps = len(store.load_trace(record.path))
        line += f"; {wall:.1f} s, {1e3 * wall / max(1, steps):.2f} ms/step"
    lines = [line]
    m = record.metrics
    if "modes_covered" in m:
        lines.append(f"modes covered: {m['modes_covered']}/{m['n_modes']}  high-quality: {m['hq_fraction']:.3f}  "
                     f"mode KL: {m['mode_kl']:.3f}  MMD^2: {m['mmd2']:.4f}  success: {m['success']}")
    return "\n".join([*lines, f"record: {record.path}"])


def run(parser: Parser, args: argparse.Namespace) -> int:
    """Check everything (nothing is written before), then reuse the configuration's finished
    record or train and record it through the sweeps' worker; print the summary."""
    try:
        plugins = load_plugins(args.plugin)
        cfg = config_from_args(args)
        device = str(check_device(args.device))
        check_counts(threads=args.threads)
        snaps = parse_int_list(args.snapshot_steps, "--snapshot-steps", minimum=0) if args.snapshot_steps else []
        if any(s > cfg.steps for s in snaps):
            raise UsageError(f"--snapshot-steps must lie in 0..{cfg.steps}")
        options = long_run_from_args(args)
        store.ensure_writable(args.out)
        cell = Cell(cfg, (), store.sweep_dir(args.out, SWEEP, cfg.to_dict(), {}))
        store.check_names(cell.path)
        dataset = open_dataset(cfg.dataset, args.data_root, args.download)
        if options.eval_every and dataset.kind != "toy":
            raise UsageError("--eval-every scores toy data here; for FID over steps use python -m sweeps.fid with "
                             "--seeds K --eval-every N")
    except (UsageError, PermissionError, ValueError) as err:
        fail(parser.prog, str(err))
    store.clean_partial(args.out / SWEEP)  # what killed runs left
    state = store.state(cell.path, cfg.key())
    if state.startswith("damaged"):
        print(f"{cell.path}: {state}; training it again", file=sys.stderr)
    elif state == "finished" and not args.force:
        missing = lacking(cell.path, snaps, options)
        if not missing:
            print(f"{cell.path}: a finished record of this configuration; reusing it (--force trains it again)",
                  file=sys.stderr)
            print(summary(store.read(cell.path)))
            return 0
        print(f"{cell.path}: finished, but without what {', '.join(missing)} asks for; training it again",
              file=sys.stderr)
    task, = stack_tasks(SWEEP, [cell], [cell], lambda _: evaluate_samples, plugins, max_stack=1, long=options,
                        snapshot_steps=snaps, figures=draw_figures)
    torch.set_num_threads(args.threads)
    with tqdm(total=cfg.steps, desc=f"{cfg.model} on {cfg.dataset}", unit="step", file=sys.stderr) as bar:
        row, = run_task(task, device, progress=lambda done: bar.update(done - bar.n))
    if row["status"] != "crashed":
        print(summary(store.read(cell.path)))
    else:  # said from its row: its crash record may not have been written (a full disk)
        print(f"status: crashed: {row['reason']}")
        if store.state(cell.path, cfg.key()) == "crashed":
            print(f"record: {cell.path}")
    return crash_exit_code([row], "run")


if __name__ == "__main__":
    sys.exit(main())
