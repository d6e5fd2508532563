"""Training-speed benchmark: generator steps per second for every objective.

    python -m sweeps.bench                          # toy setting, stacks of 1 and 4 runs, vs naive yardstick
    python -m sweeps.bench --stack 1,4,12 --image   # also DCGAN 32x32 at batch 64
    python -m sweeps.bench --device cuda --stack 1,20,80     # eager and CUDA-graphed, with launches and GPU-busy

Toy setting: ring2d, noise dim 4, generator width 100, batch 200 (the paper's ring). A
stack of R runs trained as one batched model counts R generator steps per step. Each
timing is the median of ``--repeats`` runs of ``--timed-steps`` steps after ``--warmup`` steps
(objectives with k > 1 critic steps per generator step time ``--timed-steps / k``). With
``--naive PATH`` (default: ``../shared/bench/naive_ring.py`` when that file exists) the
plain single-run implementation is timed in the same invocation, interleaved with ours so
that both see the same machine load, and the table reports the speed-up per core for every
objective the yardstick implements.

On CUDA every (objective, stack) is timed twice, eager and with the step replayed as a CUDA
graph (`engine.graphs`; ``mode`` says which ran: a failed capture falls back to eager), and
profiled (torch.profiler): host-side launches per step, GPU kernel time per step, and the
GPU-busy fraction (kernel time over wall time per step).
"""
from __future__ import annotations

import itertools
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli import Parser, UsageError, check_device, fail
from cli.options import add_options
from core import paper

if TYPE_CHECKING:
    import torch

    from engine import RunConfig, Trainer

DEFAULT_NAIVE = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "naive_ring.py"


def time_ours(cfg: RunConfig, stack: int, device: torch.device, warmup: int, steps: int, repeats: int,
              graphs: bool = False) -> tuple[float, Trainer]:
    """Median seconds per (stacked) generator step, and the trainer (for profiling). With
    ``graphs`` the warm-up includes capturing the step as a CUDA graph."""
    import torch

    from engine import Trainer
    total = warmup + steps * (repeats + 1)
    trainer = Trainer([cfg.replace(seed=s, steps=total) for s in range(stack)], device, graphs=graphs)
    trainer.train(warmup)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        trainer.train(steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times), trainer


def profile_gpu(trainer: Trainer, steps: int) -> dict[str, float]:
    """Per generator step, from torch.profiler over ``steps`` steps: host-side launches (kernel
    and graph launches, memory copies and sets: what the CPU must issue) and the time the
    GPU spends in kernels."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.train(steps)
        torch.cuda.synchronize(trainer.device)
    events = prof.key_averages()
    launches = sum(e.count for e in events if "Launch" in e.key or e.key in ("cudaMemcpyAsync", "cudaMemsetAsync"))
    kernel_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return {"launches_per_step": launches / steps, "gpu_ms_per_step": kernel_us / 1e3 / steps}


def time_naive(script: Path, cfg: RunConfig, steps: int, threads: int) -> float | None:
    """Seconds per generator step of the plain yardstick (single run, its own process), or
    None when the yardstick does not implement ``cfg.model`` (it rejects it as a usage error)."""
    res = subprocess.run([sys.executable, str(script), "--model", cfg.model, "--steps", str(steps),
                          "--noise-dim", str(cfg.noise_dim), "--width", str(cfg.width), "--threads", str(threads)],
                         capture_output=True, text=True)
    if res.returncode == 2:
        return None
    res.check_returncode()
    return float(re.search(r"ms_per_step=([\d.]+)", res.stdout).group(1)) / 1e3


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.bench", description=__doc__.split("\n\n")[0])
    add_options(p, "plugin", "models", "stack", "timed_steps", "warmup", "repeats", "threads", "devices", "naive",
                "image", "arch", "image_dataset", "out", one=("devices", "arch"),
                defaults={"models": "all", "arch": "dcgan", "out": Path("results/bench")},
                notes={"arch": "the architecture of --image", "out": "bench.csv and bench.json"})
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    import data
    import objectives
    import store
    from sweeps.inputs import open_dataset
    from engine import MAX_STACK, RunConfig
    from models import ARCHITECTURES
    models, stacks = args.models, args.stack
    missing = None  # the default yardstick, when it is absent: said after every check passed
    try:
        device = check_device(args.devices)
        naive = DEFAULT_NAIVE if args.naive == "default" else None if args.naive == "none" else Path(args.naive)
        if naive is not None and not naive.is_file():
            if args.naive != "default":
                raise UsageError(f"naive yardstick {naive} not found (pass --naive PATH or --naive none)")
            missing, naive = naive, None
        if device.type != "cpu":
            naive = None
        if args.image and (args.arch not in ARCHITECTURES or not data.known(args.image_dataset)):
            raise UsageError(f"--image needs architecture {args.arch!r} and data set {args.image_dataset!r}")
        if max(stacks) > MAX_STACK:
            raise UsageError(f"--stack values must be at most {MAX_STACK}")
        if args.image:
            open_dataset(args.image_dataset)
        store.ensure_writable(args.out)
    except (UsageError, PermissionError) as err:
        fail(parser.prog, str(err))
    if missing is not None:
        print(f"note: no naive yardstick at {missing}; timing ours only", file=sys.stderr)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    settings = [("toy", {"dataset": "ring2d"})]  # RunConfig's defaults: the paper's ring setting
    if args.image:
        settings.append(("image", {"dataset": args.image_dataset, "arch": args.arch, "noise_dim": paper.IMAGE_NOISE_DIM,
                                   "batch": paper.IMAGE_BATCH}))
    rows = []
    for setting, fields in settings:
        for model in models:
            cfg = RunConfig(model=model, **fields)
            steps = max(10, args.timed_steps // max(1, objectives.get(model).critic_steps(cfg.hyperparameters)))
            naive_s = None
            if naive is not None and setting == "toy":
                times = [time_naive(naive, cfg, steps + args.warmup, args.threads) for _ in range(args.repeats)]
                naive_s = None if None in times else statistics.median(times)
            for stack, graphs in itertools.product(stacks, (False, True) if device.type == "cuda" else (False,)):
                sec, trainer = time_ours(cfg, stack, device, args.warmup, steps, args.repeats, graphs)
                per_core = stack / sec / (args.threads if device.type == "cpu" else 1)
                row = {"setting": setting, "model": model, "stack": stack, "device": str(device),
                       "mode": "graphed" if trainer.captured is not None else "eager",
                       "ms_per_step": 1e3 * sec, "run_steps_per_s_per_core": per_core}
                if device.type == "cuda":
                    gpu = profile_gpu(trainer, steps)
                    row.update(gpu, gpu_busy=min(1.0, gpu["gpu_ms_per_step"] / (1e3 * sec)))
                if naive_s is not None:
                    row["naive_ms_per_step"] = 1e3 * naive_s
                    row["speedup_vs_naive"] = per_core * naive_s * args.threads
                rows.append(row)
                print(", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    store.write_text(args.out / "bench.csv", table.to_csv(index=False))
    store.write_text(args.out / "bench.json", json.dumps({"provenance": store.provenance(),
                                                          "args": vars(args) | {"out": str(args.out)}}, indent=2))
    print(table.to_markdown(index=False, floatfmt=".3g"))
    print(f"\nwritten: {args.out / 'bench.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
