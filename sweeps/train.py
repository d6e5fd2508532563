"""Train one run of one objective and store everything about it.

    python -m sweeps.train --models gram --dataset ring2d --noise-dims 4 --widths 100 \\
        --steps 3000 --seed 0 --out results/runs/gram-demo

Writes the record directory described in `store.records` (per-step diagnostics CSV,
generator weights, 10,000 samples, metrics, the complete configuration) plus
``samples.png`` (samples over data), ``trace.png`` (the per-step diagnostics,
`analysis.traces`) and, with ``--snapshot-steps``, ``process.png`` (data and projected
space over training, `analysis.process`), then prints the ring metrics.

A long run writes a checkpoint every ``--checkpoint-minutes`` (default 10) beside its
record (`store.run_checkpoint`); rerunning the same command after a kill resumes from
it and ends with the same samples as a run never stopped. ``--eval-every N`` stores the
ring metrics over training steps (``metrics_over_steps.csv``, drawn as
``metrics_over_steps.png``) and ``--tensorboard`` a live view (see `sweeps.longrun`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import store
from analysis.figures import save_scatter
from analysis.curves import save_curves
from analysis.process import config_title, save_process
from analysis.traces import write_traces
from cli import (Parser, UsageError, add_data_args, add_models_arg, add_out_arg, add_plugin_arg, check_counts,
                 check_device, clean_exit, fail, load_plugins, open_dataset, parse_int_list, parse_models,
                 parse_overrides)
from engine import RunConfig, field_default
from metrics.ring import reference_samples
from sweeps.longrun import SampleView, StackRun, add_long_run_args, long_run_from_args
from sweeps.worker import evaluate_samples, save_outcome, stack_info

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
    add_out_arg(p, None, "record directory (default results/runs/<model>-<dataset>-nz<N>-w<W>-s<seed>); an existing "
                         "record there is replaced, any other existing file or folder is refused")
    add_plugin_arg(p)
    add_long_run_args(p)
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate the arguments into a `RunConfig`; bad input raises `UsageError`."""
    load_plugins(args.plugin)
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


def run(parser: Parser, args: argparse.Namespace) -> int:
    """Check everything (nothing is written before), train, record, print the metrics."""
    try:
        device = check_device(args.device)
        cfg = config_from_args(args).replace(device=device.type)  # the device kind is part of the run's identity
        check_counts(threads=args.threads)
        out = args.out or Path("results/runs") / f"{cfg.model}-{cfg.dataset}-nz{cfg.noise_dim}-w{cfg.width}-s{cfg.seed}"
        snaps = parse_int_list(args.snapshot_steps, "--snapshot-steps", minimum=0) if args.snapshot_steps else []
        if any(s > cfg.steps for s in snaps):
            raise UsageError(f"--snapshot-steps must lie in 0..{cfg.steps}")
        options = long_run_from_args(args)
        store.ensure_record_target(out)
        checkpoint = store.run_checkpoint(out, cfg.key())
        store.check_names(checkpoint)
        dataset = open_dataset(cfg.dataset, args.data_root, args.download)
        if options.eval_every and dataset.kind != "toy":
            raise UsageError("--eval-every scores toy data here; for FID over steps use python -m sweeps.fid with "
                             "--seeds K --eval-every N")
        store.clean_partial(out.parent, out.name)  # what a killed run of this --out left
        store.clean_partial(checkpoint.parent, checkpoint.name)
        stack = StackRun([cfg], device, options, checkpoint, [store.live_dir(out)],
                         lambda samples, r: evaluate_samples.over_steps(samples, dataset, cfg, str(device)),
                         SampleView(dataset, [cfg.seed]) if options.tensorboard else None, snapshot_steps=snaps)
    except (UsageError, PermissionError, ValueError) as err:
        fail(parser.prog, str(err))
    torch.set_num_threads(args.threads)

    trainer = stack.trainer
    with tqdm(total=cfg.steps, initial=trainer.steps_done, desc=f"{cfg.model} on {cfg.dataset}", unit="step",
              file=sys.stderr) as bar:
        stack.run(progress=lambda done: bar.update(done - bar.n))
    outcome = trainer.outcomes()[0]
    evaluation = evaluate_samples(outcome, dataset, str(device))
    curves = stack.curve(0)
    title = config_title(cfg.to_dict())

    def figures(tmp: Path) -> None:
        """samples.png (toy data), trace.png, and process.png when snapshots were taken.
        A figure that fails to draw is reported, never allowed to lose the trained run."""
        try:
            if dataset.kind == "toy":
                ref = reference_samples(dataset, cfg.seed, 2_000)
                save_scatter(tmp / "samples.png", ref, outcome.samples, f"{title}, step {cfg.steps}")
            write_traces([(title, store.load_trace(tmp), trainer.objective.describe())], tmp / "trace.png")
            if outcome.snapshots:
                save_process(tmp, tmp / "process.png", snaps=outcome.snapshots, title=title)
            if curves is not None and len(curves):
                save_curves([(title, curves)], tmp / "metrics_over_steps.png")
        except Exception as err:  # noqa: BLE001 - the record matters more than its pictures
            print(f"warning: could not draw a figure: {type(err).__name__}: {err}", file=sys.stderr)

    save_outcome(outcome, out, evaluation, run={"stack": stack_info([cfg], 0), **stack.provenance()}, extra=figures,
                 curves=curves, tensorboard=store.live_dir(out) if options.tensorboard else None)
    stack.discard_checkpoint()
    m = evaluation.metrics
    status = outcome.status if outcome.reason is None else f"{outcome.status}: {outcome.reason}"
    ms = 1e3 * outcome.wall_time / max(1, trainer.steps_done)
    print(f"status: {status}; {outcome.wall_time:.1f} s, {ms:.2f} ms/step")
    if m:
        print(f"modes covered: {m['modes_covered']}/{m['n_modes']}  high-quality: {m['hq_fraction']:.3f}  "
              f"mode KL: {m['mode_kl']:.3f}  MMD^2: {m['mmd2']:.4f}  success: {m['success']}")
    print(f"record: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
