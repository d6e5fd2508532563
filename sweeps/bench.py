"""Training-speed benchmark: generator steps per second for every objective.

    python -m sweeps.bench                          # toy setting, stacks of 1 and 4 runs, vs naive yardstick
    python -m sweeps.bench --stack 1,4,12 --image   # also DCGAN 32x32 at batch 64
    python -m sweeps.bench --device cuda --stack 1,20,80     # eager and CUDA-graphed, with launches and GPU-busy

Toy setting: ring2d, noise dim 4, generator width 100, batch 200 (the paper's ring). A
stack of R runs trained as one batched model counts R generator steps per step.

How it times, so that the yardstick and ours are measured alike: ``--repeats`` rounds, and
in each round the yardstick (``--naive PATH``, default ``../shared/bench/naive_ring.py``
when that file exists; CPU only) runs once, then every stack of ours runs ``--timed-steps`` steps
(objectives with k > 1 critic steps per generator step run ``--timed-steps / k``), so both see
the same machine load. Warm-up is excluded on both sides: ours trains ``--warmup`` untimed
steps once per stack before the first round; the yardstick (a process of its own, which
times its loop from its first step and whose CPU time includes starting Python) runs twice
per round, ``w`` and ``w + n`` steps (w = max(1, --warmup); n = ``steps``, or more where
that is under `NAIVE_TIMED_S` of its work, judged by the first run's loop timer), and the
difference of the two is what n warm steps cost it, in wall time (its own loop timer) and
in CPU time (the child's user + system time: the start-up's share varies by tenths of a
second, which seconds of timed work make small). Its process imports `core.blas` and
`core.allocator` before the script runs, so MKL's kernels and malloc's thresholds are as in
ours and the ratios compare code alone. Both
clocks are reported for both sides: wall
(``ms_per_step``) and CPU (``cpu_ms_per_step``: ``time.process_time`` for ours), each the
median over rounds with the spread over rounds (``_min``, ``_max``); the speed-ups against
the yardstick per core use the medians, in wall time (``speedup_vs_naive``) and in CPU time
(``cpu_speedup_vs_naive``).

On CUDA every (objective, stack) is timed twice, eager and with the step replayed as a CUDA
graph (`engine.graphs`; ``mode`` says which ran: a failed capture falls back to eager), and
profiled (torch.profiler): host-side launches per step, GPU kernel time per step, and the
GPU-busy fraction (kernel time over wall time per step).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cli import Parser, UsageError, check_device, fail
from cli.options import add_options
from core import paper
from core.limits import LIMITS

if TYPE_CHECKING:
    import torch

    from engine import RunConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
# The yardstick runs as its own script would (its folder first on the path, as __main__), after
# `core.blas` and `core.allocator`: MKL's kernels and malloc's thresholds are then as in our
# processes, so the ratios compare code alone.
LIKE_OURS = ("import os, runpy, sys; from core import allocator, blas; sys.argv = sys.argv[1:]; "
             "sys.path[0] = os.path.dirname(sys.argv[0]); runpy.run_path(sys.argv[0], run_name='__main__')")
DEFAULT_NAIVE = ROOT.parent / "shared" / "bench" / "naive_ring.py"
# The yardstick's timed work per round, at least: its CPU time is read from whole processes, whose
# start-up CPU time varied by 0.3 s or more; over 40 MMD-GAN steps (under a second) that put its
# CPU ms per step anywhere from 12.5 to 27.7 within one bench.
NAIVE_TIMED_S = 4.0


@dataclass
class Timings:
    """Seconds per generator step, wall and CPU, one entry per round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float | None, steps: int) -> None:
        self.wall.append(wall / steps)
        self.cpu.append(math.nan if cpu is None else cpu / steps)

    def columns(self, prefix: str = "") -> dict[str, float]:
        """Median, min and max over rounds of both clocks, in ms per step."""
        out = {}
        for clock, values in (("", self.wall), ("cpu_", self.cpu)):
            name = f"{prefix}{clock}ms_per_step"
            out |= {name: 1e3 * statistics.median(values), f"{name}_min": 1e3 * min(values),
                    f"{name}_max": 1e3 * max(values)}
        return out


def new_trainer(cfg: RunConfig, stack: int, device: torch.device, warmup: int, steps: int, rounds: int,
                graphs: bool = False) -> Trainer:
    """A stack of ``stack`` runs of ``cfg``, trained ``warmup`` untimed steps (with ``graphs``,
    the warm-up includes capturing the step as a CUDA graph), long enough for ``rounds`` of
    ``steps`` and one more (profiling)."""
    from engine import Trainer
    trainer = Trainer([cfg.replace(seed=s, steps=warmup + steps * (rounds + 1)) for s in range(stack)], device,
                      graphs=graphs)
    trainer.train(warmup)
    return trainer


def time_ours(trainer: Trainer, steps: int, timings: Timings) -> None:
    """One round: ``steps`` steps of ``trainer``, wall and CPU time of this process."""
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(trainer.device)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train(steps)
    if cuda:
        torch.cuda.synchronize(trainer.device)
    timings.add(time.perf_counter() - wall, time.process_time() - cpu, steps)


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


def _run_naive(script: Path, cfg: RunConfig, steps: int, threads: int) -> tuple[float, float] | None:
    """(seconds of the yardstick's timed loop, CPU seconds of its whole process) for a run of
    ``steps`` steps, or None when it does not implement ``cfg.model`` (a usage error, exit 2)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run([sys.executable, "-c", LIKE_OURS, str(script), "--model", cfg.model, "--steps", str(steps),
                          "--noise-dim", str(cfg.noise_dim), "--width", str(cfg.width), "--threads", str(threads)],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": path})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode == 2:
        return None
    timed = re.search(r"ms_per_step=([\d.]+)", res.stdout)
    if res.returncode or timed is None:
        said = (res.stderr.strip().splitlines() or ["no ms_per_step=... line on its output"])[-1][:200]
        raise UsageError(f"the naive yardstick {script} failed (exit code {res.returncode}): {said}")
    loop = float(timed.group(1)) / 1e3 * steps
    return loop, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def time_naive(script: Path, cfg: RunConfig, warmup: int, steps: int, threads: int, timings: Timings) -> bool:
    """One round of the yardstick: the cost of n warm steps, as the difference of a run of
    ``w + n`` and one of ``w`` steps, n at least ``steps`` and enough for `NAIVE_TIMED_S` of
    work (see the module docstring); False when it does not implement ``cfg.model``. A CPU
    difference that start-up noise makes non-positive is not a measurement: NaN."""
    w = max(1, warmup)
    short = _run_naive(script, cfg, w, threads)
    if short is None:
        return False
    n = max(steps, math.ceil(NAIVE_TIMED_S * w / max(short[0], 1e-9)))
    long = _run_naive(script, cfg, w + n, threads)
    if long is None:
        return False
    cpu = long[1] - short[1]
    timings.add(long[0] - short[0], cpu if cpu > 0 else None, n)
    return True


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
    from engine import MAX_STACK, RunConfig
    from models import ARCHITECTURES
    from sweeps.inputs import open_dataset
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
        if args.image and args.arch not in ARCHITECTURES:
            raise UsageError(f"--image needs architecture {args.arch!r}; choose from {', '.join(ARCHITECTURES)}")
        if not data.known(args.image_dataset) or data.get(args.image_dataset).kind != "image":
            kind = f"is {data.get(args.image_dataset).kind} data" if data.known(args.image_dataset) else "is unknown"
            raise UsageError(f"--image-dataset {args.image_dataset} {kind}; --image times an image data set, e.g. "
                             "mnist5k or cifar10")
        if max(stacks) > MAX_STACK:
            raise UsageError(f"--stack values must be at most {MAX_STACK}")
        longest = args.warmup + args.timed_steps * (args.repeats + 1)  # what `new_trainer` trains at most
        if longest > LIMITS["steps"]:
            raise UsageError(f"--warmup + --timed-steps x (--repeats + 1) is {longest:,} steps; at most "
                             f"{LIMITS['steps']:,}")
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
            cfg = RunConfig(model=model, device=device.type, **fields)
            steps = max(10, args.timed_steps // max(1, objectives.get(model).critic_steps(cfg.hyperparameters)))
            runs = list(itertools.product(stacks, (False, True) if device.type == "cuda" else (False,)))
            trainers = [new_trainer(cfg, stack, device, args.warmup, steps, args.repeats, graphs)
                        for stack, graphs in runs]
            ours = [Timings() for _ in runs]
            naive_t = Timings() if naive is not None and setting == "toy" else None
            for _ in range(args.repeats):  # rounds: the yardstick, then every stack of ours
                try:
                    if naive_t is not None and not time_naive(naive, cfg, args.warmup, steps, args.threads, naive_t):
                        naive_t = None
                except UsageError as err:  # a --naive script that fails: nothing is written
                    fail(parser.prog, str(err))
                for trainer, timings in zip(trainers, ours):
                    time_ours(trainer, steps, timings)
            for (stack, _), trainer, timings in zip(runs, trainers, ours):
                row = {"setting": setting, "model": model, "stack": stack, "device": str(device),
                       "mode": "graphed" if trainer.captured is not None else "eager", **timings.columns()}
                sec = row["ms_per_step"] / 1e3
                row["run_steps_per_s_per_core"] = stack / sec / (args.threads if device.type == "cpu" else 1)
                if device.type == "cuda":
                    gpu = profile_gpu(trainer, steps)
                    row.update(gpu, gpu_busy=min(1.0, gpu["gpu_ms_per_step"] / (1e3 * sec)))
                if naive_t is not None:
                    row |= naive_t.columns("naive_")
                    # per core: the yardstick is one run on ``threads`` threads, ours ``stack`` runs on as many
                    row["speedup_vs_naive"] = stack * row["naive_ms_per_step"] / row["ms_per_step"]
                    row["cpu_speedup_vs_naive"] = stack * row["naive_cpu_ms_per_step"] / row["cpu_ms_per_step"]
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
