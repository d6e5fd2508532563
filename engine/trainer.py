"""Training engine: a stack of R runs of one objective trained together as one batched model.

Runs can share a stack when they differ only in seed, noise dimension and generator width
(`RunConfig.stack_key`; how generators of several widths are held: `models.stacked`);
R = 1 is an ordinary single run. Each run draws its noise, its real
batches, its initial weights and its training set from its own seed, so a run's numbers do
not depend on which runs share its stack (up to float rounding of batched kernels). The
loop itself is `Trainer.train`.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

import data
import objectives
from engine.config import RunConfig
from engine.ema import GeneratorEMA
from engine.graphs import WARMUP_STEPS, CapturedStep, CaptureError, warmup_stream
from models import ArchConfig, NetFactory
from objectives.base import RunStreams

CHECK_EVERY = 250  # steps between divergence checks (one host sync each)
EXPLODE_FACTOR = 100.0  # samples farther than this x the data's max |x| count as exploded


@dataclass
class RunOutcome:
    """What one finished run hands to storage and analysis."""

    config: RunConfig
    status: str  # "ok" or "diverged"
    reason: str | None
    diverged_at: int | None
    diag_names: list[str]
    trace: np.ndarray  # (steps, n_diag), NaN where not reached
    samples: np.ndarray  # (n_samples, *x_shape)
    generator_state: dict[str, Tensor]
    snapshots: dict[str, np.ndarray]  # see Trainer.snapshot; empty unless steps were requested
    wall_time: float
    stack_size: int
    device: str
    ema_samples: np.ndarray | None = None  # the EMA generator's samples (same noise), when RunConfig.ema > 0


SAMPLE_CHUNK = 2_000  # samples per generator pass when drawing many


@torch.no_grad()
def draw_samples(generator: torch.nn.Module, noise_dims: Sequence[int], seeds: Sequence[int], noise: str, n: int,
                 role: str, device: torch.device) -> Tensor:
    """``n`` samples per run, ``(R, n, *x)`` on the CPU, from run r's noise stream for
    ``role`` (`core.streams`: "samples" for a record's final samples, "evaluation", "view"),
    in passes of `SAMPLE_CHUNK` (batch norm in training mode normalises over each pass);
    never a training stream, so drawing shifts nothing in training."""
    source = objectives.NoiseSource(noise_dims, seeds, device, noise, role=role)
    return torch.cat([generator(source(min(SAMPLE_CHUNK, n - i))).cpu() for i in range(0, n, SAMPLE_CHUNK)], 1)


def net_factory(configs: Sequence[RunConfig], dataset: Any, device: torch.device | str = "cpu") -> NetFactory:
    """The network factory of a stack of ``configs`` on ``dataset`` (its widest generator
    sets the layers' size, see `models.stacked`); with one configuration, that run's own
    networks (e.g. to load a record's ``generator.pt``)."""
    cfg, widths = configs[0], [c.width for c in configs]
    arch = ArchConfig(arch=cfg.arch, width=max(widths), depth=cfg.depth,
                      out_activation=getattr(dataset, "output_activation", "identity"))
    return NetFactory(arch, dataset.x_shape, [c.noise_dim for c in configs], [c.seed for c in configs], device,
                      widths)


class BatchSource(RunStreams):
    """Real minibatches ``(k, R, B, *x)``: run r samples indices from its own stream: a
    generator per run on the CPU; on CUDA (or with ``counter``) one counter-based draw for
    all runs (`objectives.base.draws_by_counter`: a few kernels instead of one per run)."""

    def __init__(self, train_sets: Tensor, seeds: Sequence[int], batch: int, device: torch.device,
                 counter: bool | None = None):
        super().__init__(seeds, "batches", device, counter)
        self.sets, self.batch, self.runs = train_sets, batch, len(seeds)
        self.rows = torch.arange(len(seeds), device=device).unsqueeze(1)

    def __call__(self, k: int) -> Tensor:
        n = self.sets.shape[1]
        if self.counter is not None:
            idx = self.counter.integers(n, torch.arange(k * self.batch, device=self.device).expand(self.runs, -1),
                                        k * self.batch)
        else:
            idx = torch.stack([torch.randint(n, (k * self.batch,), generator=g, device=self.device)
                               for g in self.generators])
        x = self.sets[0][idx] if self.sets.shape[0] == 1 else self.sets[self.rows, idx]
        return x.view(self.runs, k, self.batch, *x.shape[2:]).transpose(0, 1)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Python's collector leaves alone what is alive on entry (torch's modules, the networks)
    until exit: its periodic full collections walked all of it, 3% of an MMD-GAN step; a step
    frees its own objects by reference counting. Unfrozen on exit, so the interpreter's
    shutdown still collects them."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Trainer:
    """Builds and trains one stack of runs; see the module docstring."""

    def __init__(self, configs: Sequence[RunConfig], device: str | torch.device = "cpu",
                 snapshot_steps: Sequence[int] = (), snapshot_points: int = 1_000, graphs: bool | None = None):
        keys = {c.stack_key() for c in configs}
        if len(keys) != 1:
            raise ValueError("runs in one stack must differ only in seed, noise dimension and width")
        self.configs, cfg = list(configs), configs[0]
        self.device = torch.device(device)
        # Denormal floats take a slow path on CPUs and flushing them changes results in the
        # last bits; set it here so every entry point (single run, sweep, bench, tests)
        # trains with the same numerics.
        torch.set_flush_denormal(True)
        self.dataset = data.get(cfg.dataset)
        seeds, noise_dims = [c.seed for c in configs], [c.noise_dim for c in configs]
        # Toy sets differ per seed; a data set that returns one shared tensor is not copied.
        unique = {s: self.dataset.train_set(s) for s in dict.fromkeys(seeds)}
        first = next(iter(unique.values()))
        shared = all(v is first for v in unique.values())
        stacked = first.unsqueeze(0) if shared else torch.stack([unique[s] for s in seeds])
        self.train_sets = stacked.to(self.device, torch.get_default_dtype())  # torch's default dtype
        self._build()
        self.data_scale = float(first.abs().max())
        # fixed noise for the exploding-samples check, so checks never shift the training streams
        self.probe = objectives.NoiseSource(noise_dims, seeds, self.device, role="probe")(256)
        self.snapshot_steps = sorted(set(snapshot_steps))
        self.snapshots: list[dict[str, Any]] = []
        if self.snapshot_steps:  # fixed points, so snapshots differ only by training
            self.snap_noise = objectives.NoiseSource(noise_dims, seeds, self.device,
                                                     role="snapshots")(snapshot_points)
            self.snap_data = self.train_sets[:, :snapshot_points].expand(len(seeds), -1, *stacked.shape[2:])
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self.captured: CapturedStep | None = None
        self.eager_steps = 0  # eager steps since the trainer was built (warm-up before capture)
        self.steps_done, self.wall_time = 0, 0.0
        self.checked_to = 0  # divergence checked up to this step
        self.diag_names: list[str] = []
        self.trace: Tensor | None = None
        self.diverged_at: list[int | None] = [None] * len(seeds)
        self.reasons: list[str | None] = [None] * len(seeds)

    def _build(self) -> None:
        """The networks, optimisers and random streams, from the configurations (again after
        a failed graph capture, which can leave generators unusable)."""
        cfg, seeds = self.configs[0], [c.seed for c in self.configs]
        noise_dims = [c.noise_dim for c in self.configs]
        factory = net_factory(self.configs, self.dataset, self.device)
        self.noise = objectives.NoiseSource(noise_dims, seeds, self.device, cfg.noise)
        self.objective = objectives.build(cfg.model, factory, self.noise, cfg.hyperparameters)
        self.batches = BatchSource(self.train_sets, seeds, cfg.batch, self.device)
        self.ema = GeneratorEMA(self.objective.generator, cfg.ema) if cfg.ema else None

    def random_generators(self) -> list[torch.Generator]:
        """Every random stream a training step draws from (registered with a CUDA graph)."""
        streams = [self.noise, *self.objective.random_streams()]
        return [g for s in streams for g in s.generators] + list(self.batches.generators)

    @property
    def runs(self) -> int:
        return len(self.configs)

    @property
    def done(self) -> bool:
        """Trained to the configured length, or every run has diverged (training stops)."""
        return self.steps_done >= self.configs[0].steps or all(d is not None for d in self.diverged_at)

    def train(self, steps: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Advance every run by ``steps`` generator steps (default: up to the configured length).

        Divergence is checked every `CHECK_EVERY` steps counted from step 0 and at the last
        step, whatever the calls' lengths, so training in pieces (checkpoints, evaluations,
        a resumed run) stops and labels runs exactly as one call does. ``progress`` gets the
        steps done at each check and at the end of the call."""
        total = self.configs[0].steps
        stop = min(total, self.steps_done + (steps if steps is not None else total))
        per_step = self.objective.batches_per_step
        t0 = time.perf_counter()
        if self.steps_done == 0 and 0 in self.snapshot_steps:
            self.snapshot()
        with frozen_heap():
            for t in range(self.steps_done, stop):
                if self.done:
                    break
                if self.captured is not None:
                    self.captured.replay(t)
                else:
                    self._eager_step(t, per_step)
                if self.ema is not None:
                    self.ema.update(self.objective.generator)
                self.steps_done = t + 1
                if self.snapshot_steps and self.steps_done in self.snapshot_steps:
                    self.snapshot()
                if self.steps_done % CHECK_EVERY == 0 or self.steps_done == total:
                    self._check_divergence(self.checked_to, self.steps_done)
                    self.checked_to = self.steps_done
                    if progress and self.steps_done != stop:
                        progress(self.steps_done)
        if progress:
            progress(self.steps_done)
        self.wall_time += time.perf_counter() - t0

    def _eager_step(self, t: int, per_step: int) -> None:
        """Step ``t`` run op by op; with graphs on, the warm-up before capturing the step."""
        warming = self.graphs and self.device.type == "cuda"
        stream = warmup_stream(self.device) if warming else None
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext(), self.autocast():
            diag = self.objective.step(self.batches(per_step))
            if self.trace is None:
                self.diag_names = list(diag)
                self.trace = torch.full((self.configs[0].steps, self.runs, len(diag)), math.nan, device=self.device)
            self.trace[t] = torch.stack([d.to(self.trace.dtype) for d in diag.values()], -1)
        if stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(stream)
        self.eager_steps += 1
        if self.graphs and self.eager_steps >= WARMUP_STEPS:
            self._capture()

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision a step's network layers run in (`RunConfig.layer_dtype`): bfloat16
        autocast, or float32 as they are. Kernel math stays float32 either way
        (`objectives.kernels`), as do parameters, gradients and optimiser state."""
        if self.configs[0].layer_dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _capture(self) -> None:
        """Capture the step as a CUDA graph; on failure, say why in one line and go on eagerly
        from a rebuilt copy of the current state."""
        state = copy.deepcopy(self.state_dict())
        try:
            self.captured = CapturedStep(self)
        except CaptureError as err:
            print(f"CUDA graph capture failed ({err}); training eagerly", file=sys.stderr)
            self.graphs, self.captured = False, None
            self._build()
            self.load_state_dict(state)

    def _check_divergence(self, start: int, stop: int) -> None:
        """Mark runs whose diagnostics went non-finite or whose samples exploded."""
        finite = torch.isfinite(self.trace[start:stop]).all(-1)  # (steps, R)
        with torch.no_grad():
            size = self.objective.generator(self.probe).flatten(2).abs().amax(-1).amax(-1)  # (R,)
        finite, size = finite.cpu(), size.cpu()
        for r in range(self.runs):
            if self.diverged_at[r] is not None:
                continue
            if not bool(finite[:, r].all()):
                self.diverged_at[r] = start + int((~finite[:, r]).nonzero()[0])
                self.reasons[r] = f"non-finite loss at step {self.diverged_at[r]}"
            elif not (float(size[r]) <= EXPLODE_FACTOR * self.data_scale):
                self.diverged_at[r] = stop
                self.reasons[r] = f"samples exploded (max |x| = {float(size[r]):.3g}) by step {stop}"

    @torch.no_grad()
    def snapshot(self) -> None:
        """Record fixed-noise samples, and the learned features of data and samples if the
        objective has a projector or encoder (`Objective.features`), at the current step."""
        samples = self.objective.generator(self.snap_noise)
        snap = {"step": self.steps_done, "samples": samples.cpu()}
        feats = self.objective.features(self.snap_data)  # data and samples in separate passes (batch norm)
        if feats is not None:
            snap["features_data"], snap["features_samples"] = feats.cpu(), self.objective.features(samples).cpu()
        self.snapshots.append(snap)

    def run_snapshots(self, r: int) -> dict[str, np.ndarray]:
        """Run r's snapshots stacked over steps: ``steps (S,)``, ``data (n, *x)``,
        ``samples (S, n, *x)`` and, if present, ``features_data``/``features_samples (S, n, df)``."""
        if not self.snapshots:
            return {}
        out = {"steps": np.array([s["step"] for s in self.snapshots]),
               "data": self.snap_data[r].cpu().numpy()}
        for key in ("samples", "features_data", "features_samples"):
            if key in self.snapshots[0]:
                out[key] = np.stack([s[key][r].numpy() for s in self.snapshots])
        return out

    def sample(self, n: int, role: str = "samples", keep_state: bool = False, ema: bool = False) -> Tensor:
        """``n`` generator samples per run, ``(R, n, *x)`` on the CPU, from a fresh noise stream
        (`draw_samples`). With ``keep_state`` the generator's buffers (batch norm's running
        statistics, which every forward pass in training mode updates) are put back
        afterwards, so sampling during training (evaluations, the live view) leaves the
        state, and so the stored generator, exactly as it would be without it. With ``ema``,
        from the moving average of the weights (`engine.ema`), with the same noise."""
        generator = self.ema.model if ema else self.objective.generator
        saved = [b.clone() for b in generator.buffers()] if keep_state else []
        out = draw_samples(generator, [c.noise_dim for c in self.configs],
                           [c.seed for c in self.configs], self.configs[0].noise, n, role, self.device)
        with torch.no_grad():
            for b, s in zip(generator.buffers(), saved):
                b.copy_(s)  # in place: a captured CUDA graph keeps reading the same memory
        return out

    def outcomes(self) -> list[RunOutcome]:
        """One `RunOutcome` per run, with ``n_samples`` final samples."""
        samples = self.sample(self.configs[0].n_samples)
        ema = self.sample(self.configs[0].n_samples, ema=True) if self.ema is not None else None
        trace = self.trace.cpu().numpy() if self.trace is not None else np.zeros((0, self.runs, 0))
        gen = self.objective.generator
        return [RunOutcome(config=c, status="ok" if self.diverged_at[r] is None else "diverged",
                           reason=self.reasons[r], diverged_at=self.diverged_at[r],
                           diag_names=self.diag_names, trace=trace[:, r], samples=samples[r].numpy(),
                           generator_state=gen.run_state_dict(r, c.noise_dim),
                           snapshots=self.run_snapshots(r),
                           wall_time=self.wall_time, stack_size=self.runs, device=str(self.device),
                           ema_samples=ema[r].numpy() if ema is not None else None)
                for r, c in enumerate(self.configs)]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stopped."""
        return {"objective": self.objective.state_dict(), "noise": self.noise.state_dict(),
                "batches": self.batches.state_dict(), "steps_done": self.steps_done,
                "trace": self.trace, "diag_names": self.diag_names,
                "diverged_at": self.diverged_at, "reasons": self.reasons, "snapshots": self.snapshots,
                "checked_to": self.checked_to, "wall_time": self.wall_time,
                "ema": self.ema.state_dict() if self.ema is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.objective.load_state_dict(state["objective"])
        self.noise.load_state_dict(state["noise"])
        self.batches.load_state_dict(state["batches"])
        self.steps_done = state["steps_done"]
        self.trace = state["trace"].to(self.device) if state["trace"] is not None else None
        self.diag_names = list(state["diag_names"])
        self.diverged_at, self.reasons = list(state["diverged_at"]), list(state["reasons"])
        self.snapshots = list(state["snapshots"])
        self.checked_to, self.wall_time = state["checked_to"], state["wall_time"]
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
