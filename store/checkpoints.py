"""Training checkpoints: a stack's whole state in one file that is written atomically and
carries its own digest.

The file is one header line, ``gramharness-checkpoint sha256=<hex>``, then the state as
`torch.save` wrote it. torch does not check what it reads back (a flipped bit in a weight
loads as another weight), so `load_checkpoint` compares the digest first: a damaged
checkpoint is refused, never resumed from. The state is loaded weights-only (tensors and
plain data; nothing is unpickled that could run code).
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.files import DamagedFile, read_sealed, sealed_header, write_sealed

KIND = "checkpoint"
MAGIC = sealed_header(KIND)  # b"gramharness-checkpoint sha256="


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be used; ``str(err)`` says why in one line."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> Path:
    """Write a training checkpoint atomically (`core.files.atomic_path`): a kill at any moment
    leaves the previous checkpoint or the new one. ``state`` holds tensors and plain data."""
    buffer = io.BytesIO()
    import torch  # checkpoints hold tensors; nothing else in the store needs torch
    torch.save(dict(state), buffer)
    return write_sealed(path, KIND, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors on the CPU), None when there is none; raises
    `DamagedCheckpoint` when it cannot be read or differs from what was written."""
    try:
        payload = read_sealed(path, KIND)
    except DamagedFile as err:
        raise DamagedCheckpoint(str(err)) from None
    if payload is None:
        return None
    try:
        import torch
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a foreign payload fails in many ways
        first = str(err).splitlines()[0][:120] if str(err) else ""
        raise DamagedCheckpoint(f"cannot be read ({type(err).__name__}{': ' + first if first else ''})") from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint("is not a checkpoint of this harness")
    return state


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint (and its folder once empty)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
