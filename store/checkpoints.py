"""Training checkpoints: a stack's whole state in one file, written atomically and loaded
weights-only (tensors and plain data; nothing is unpickled that could run code)."""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.files import atomic_path


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be used; ``str(err)`` says why in one line."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> Path:
    """Write a training checkpoint atomically (`core.files.atomic_path`): a kill at any moment
    leaves the previous checkpoint or the new one. ``state`` holds tensors and plain data."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors on the CPU), None when there is none; raises
    `DamagedCheckpoint` when it cannot be read."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in many ways
        raise DamagedCheckpoint(f"cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
                                if str(err) else f"cannot be read ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint("is not a checkpoint of this harness")
    return state


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint (and its folder once empty)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
