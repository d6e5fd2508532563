"""Reuse a stored run: rebuild its generator from the record and draw samples.

    >>> from sweeps.reuse import load_generator
    >>> g = load_generator("results/fid/steps500_batch64_1a2b3c/mnist5k/gram_4f5e6d/arch=dcgan/seed0")
    >>> x = g.sample(1_000)            # float array (1000, 1, 32, 32) in the data's range
    >>> images = g.images(1_000)       # uint8 (1000, 1, 32, 32), as sweeps.fid scores them
    >>> g.sample(10_000) == the record's stored samples (for image records and single runs)

Objective plugins the run trained with (``run["plugins"]`` of its record) are loaded
first (`load_plugins_of`). The generator is built from the record's configuration (`engine.RunConfig.from_dict`)
with the engine's own factory (`engine.trainer.net_factory`) and its ``generator.pt``
loaded into it; samples come from the run's noise stream for a role (`core.streams`;
"samples" is the stream of the record's final samples), in passes of 2,000 with batch norm
in training mode, as the trainer draws them (`engine.trainer.draw_samples`). A record of
a convolutional generator, or of a run trained alone, gives back its stored samples bit
for bit on the device and with the torch thread count it trained with (one, unless
``--threads`` said otherwise: ``torch.set_num_threads(1)``); an MLP generator that trained
in a stack of several runs agrees to float rounding (its stacked products summed
differently).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import data
import objectives
import store
from data.images import to_uint8
from engine import RunConfig
from engine.config import LIMITS
from engine.trainer import draw_samples, net_factory


@dataclass
class Generator:
    """A stored run's generator, ready to sample (see the module docstring)."""

    config: RunConfig
    net: nn.Module
    device: torch.device
    record: store.Record

    def sample(self, n: int, role: str = "samples") -> np.ndarray:
        """``n`` samples ``(n, *x_shape)`` from the run's noise stream for ``role``
        (`core.streams`; "samples": the record's own samples); ``n`` in 1..LIMITS["n_samples"] (`engine.config`)."""
        most = LIMITS["n_samples"]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= most:
            raise ValueError(f"the number of samples must be an integer in 1..{most:,}, got {n!r}")
        c = self.config
        return draw_samples(self.net, [c.noise_dim], [c.seed], c.noise, n, role, self.device)[0].numpy()

    def images(self, n: int, role: str = "samples") -> np.ndarray:
        """``n`` samples as uint8 images (non-finite values clipped), as `sweeps.fid` keeps them."""
        return to_uint8(self.sample(n, role))


def load_plugins_of(record: store.Record) -> None:
    """Load the objective plugins ``record``'s run trained with (``run["plugins"]``, as
    `sweeps.worker` stores them), so its configuration can be rebuilt. A plugin whose file is
    gone raises ``FileNotFoundError`` with one line naming it and the record."""
    for spec in record.run.get("plugins", ()):
        try:
            objectives.load_plugin(spec)
        except FileNotFoundError:
            raise FileNotFoundError(f"{record.path} was trained with the objective plugin {spec}, which is gone; "
                                    "put the file back to rebuild the run") from None


def load_generator(record_dir: Path | str, device: str | torch.device = "cpu") -> Generator:
    """The generator of the record in ``record_dir`` (checked against its checksums), on
    ``device``. Raises `store.DamagedRecord` for a damaged record and ``FileNotFoundError``
    when there is none or its plugin file is gone (`load_plugins_of`); a record trained by
    another version of the code (its configuration key differs) is loaded with a warning on
    stderr. A record without a generator (a crashed run) or with one that is not plain
    weights is a `store.DamagedRecord`."""
    record = store.read(Path(record_dir))
    load_plugins_of(record)
    config = RunConfig.from_dict(record.config)
    if config.key() != record.key:
        print(f"warning: {record_dir} was trained by another version of the engine or objective; its generator "
              "may not sample as it did", file=sys.stderr)
    device = torch.device(device)
    torch.set_flush_denormal(True)  # the trainer's numerics
    net = net_factory([config], data.get(config.dataset), device).generator()
    file = Path(record_dir) / store.records.GENERATOR_FILE
    if not file.is_file():
        raise store.DamagedRecord(f"{record_dir} has no {file.name} (status {record.status}: nothing to sample from)")
    try:  # weights-only: a planted pickle in a received record never runs
        net.load_state_dict(torch.load(file, map_location=device, weights_only=True))
    except Exception as err:  # noqa: BLE001 - a foreign or planted file fails in many ways
        raise store.DamagedRecord(f"{file.name} cannot be loaded as this generator's weights "
                                  f"({type(err).__name__})") from None
    return Generator(config, net, device, record)
