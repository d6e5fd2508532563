"""Train one run of one objective and store everything about it.

    python -m sweeps.train --model gram --dataset ring2d --noise-dim 4 --width 100 \
        --steps 3000 --seed 0 --out results/runs/gram-demo

Writes the record directory described in `sweeps.records` (per-step diagnostics CSV,
generator weights, 10,000 samples, metrics) plus ``samples.png`` (samples over data),
``trace.png`` (the per-step diagnostics, `analysis.traces`) and, with ``--snapshot-steps``,
``process.png`` (data and projected space over training, `analysis.process`), then prints
the ring metrics.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm import tqdm

import data
import objectives
from analysis.figures import save_scatter
from analysis.process import config_title, save_process
from analysis.traces import load_run, write_traces
from sweeps.cli import (Parser, UsageError, add_plugin_arg, check_device, fail, load_plugins,
                        parse_int_list, parse_overrides)
from sweeps.evaluate import reference_samples, save_outcome
from sweeps.records import ensure_writable
from sweeps.runner import RunConfig, Trainer


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.train", description=__doc__.split("\n\n")[0],
               epilog="Hyperparameters default to the paper's per objective and data kind "
                      "(see objectives/*.py); override any with --set KEY=VALUE.")
    p.add_argument("--model", default="gram",
                   help=f"objective: {', '.join(objectives.names())}, or one a --plugin registers (default gram)")
    p.add_argument("--dataset", default="ring2d", help="data set: ring2d, ring3d, grid (default ring2d)")
    p.add_argument("--arch", default="mlp", help="network architecture (default mlp)")
    p.add_argument("--noise-dim", type=int, default=4, help="generator noise dimension (default 4)")
    p.add_argument("--width", type=int, default=100, help="generator hidden width (default 100)")
    p.add_argument("--depth", type=int, default=2, help="generator hidden layers (default 2)")
    p.add_argument("--steps", type=int, default=10_500,
                   help="generator steps (default 10500 = 35 epochs of 60k points at batch 200)")
    p.add_argument("--batch", type=int, default=200, help="batch size, real and generated (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, init, noise and batches (default 0)")
    p.add_argument("--noise", default="normal", choices=["normal", "uniform"], help="noise distribution")
    p.add_argument("--samples", type=int, default=10_000, help="samples drawn at the end (default 10000)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter, e.g. lr=5e-4")
    p.add_argument("--snapshot-steps", default="",
                   help="comma list of steps at which to store samples and projected points "
                        "(snapshots.npz; 0 = before training), e.g. 0,500,3000")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1, fastest for these small networks)")
    p.add_argument("--out", type=Path, default=None,
                   help="record directory (default results/runs/<model>-<dataset>-nz<N>-w<W>-s<seed>)")
    add_plugin_arg(p)
    return p


def config_from_args(args) -> RunConfig:
    """Validate the arguments into a `RunConfig`; bad input raises `UsageError`."""
    load_plugins(args.plugin)
    if args.model not in objectives.names():
        raise UsageError(f"unknown model {args.model!r}; choose from {', '.join(objectives.names())}")
    if not data.known(args.dataset):
        raise UsageError(f"unknown dataset {args.dataset!r}; choose from {', '.join(data.names())}")
    if args.seed < 0:
        raise UsageError("--seed must be non-negative")
    try:
        cfg = RunConfig(model=args.model, dataset=args.dataset, arch=args.arch, noise_dim=args.noise_dim,
                        width=args.width, depth=args.depth, steps=args.steps, batch=args.batch,
                        seed=args.seed, noise=args.noise, n_samples=args.samples,
                        hp=tuple(parse_overrides(args.set).items()))
        kind = data.get(cfg.dataset).kind
        objectives.hyperparameters(cfg.model, kind, dict(cfg.hp))
    except (ValueError, KeyError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
        device = check_device(args.device)
        if args.threads < 1:
            raise UsageError("--threads must be at least 1")
        out = args.out or Path("results/runs") / f"{cfg.model}-{cfg.dataset}-nz{cfg.noise_dim}-w{cfg.width}-s{cfg.seed}"
        ensure_writable(out.parent)
        snaps = parse_int_list(args.snapshot_steps, "--snapshot-steps", minimum=0) if args.snapshot_steps else []
        if any(s > cfg.steps for s in snaps):
            raise UsageError(f"--snapshot-steps must lie in 0..{cfg.steps}")
        trainer = Trainer([cfg], device, snapshot_steps=snaps)
    except (UsageError, PermissionError, ValueError) as err:
        fail(parser.prog, str(err))
    torch.set_num_threads(args.threads)

    with tqdm(total=cfg.steps, desc=f"{cfg.model} on {cfg.dataset}", unit="step", file=sys.stderr) as bar:
        trainer.train(progress=lambda done: bar.update(done - bar.n))
    outcome = trainer.outcomes()[0]
    dataset = trainer.dataset

    def figures(tmp: Path) -> None:
        """samples.png (toy data), trace.png, and process.png when snapshots were taken.
        A figure that fails to draw is reported, never allowed to lose the trained run."""
        if dataset.kind == "toy":
            ref = reference_samples(dataset, cfg.seed, 2_000)
            save_scatter(tmp / "samples.png", ref, outcome.samples, f"{cfg.model}, {cfg.dataset}, step {cfg.steps}")
        title = config_title(cfg.to_dict())
        try:
            write_traces([(title, load_run(tmp)[0], cfg.model)], tmp / "trace.png")
            if outcome.snapshots:
                save_process(tmp, tmp / "process.png", snaps=outcome.snapshots, title=title)
        except Exception as err:  # noqa: BLE001 - the record matters more than its pictures
            print(f"warning: could not draw a figure: {type(err).__name__}: {err}", file=sys.stderr)

    record = save_outcome(outcome, out, extra_files=figures)
    m = record["metrics"]
    status = outcome.status if outcome.reason is None else f"{outcome.status}: {outcome.reason}"
    print(f"status: {status}; {outcome.wall_time:.1f} s, {1e3 * outcome.wall_time / max(1, trainer.steps_done):.2f} ms/step")
    if m:
        print(f"modes covered: {m['modes_covered']}/{m['n_modes']}  high-quality: {m['hq_fraction']:.3f}  "
              f"mode KL: {m['mode_kl']:.3f}  MMD^2: {m['mmd2']:.4f}  success: {m['success']}")
    print(f"record: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
