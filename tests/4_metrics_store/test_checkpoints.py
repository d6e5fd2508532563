"""Checkpoints carry their digest: one flipped byte that torch would load without a word is
refused with one line, and the run trains from step 0 to the uninterrupted run's samples."""
import io
import struct
import zipfile
from pathlib import Path

import pytest
import torch

import store
from engine import RunConfig
from store.checkpoints import MAGIC
from sweeps import train
from sweeps.longrun import LongRun, StackRun

pytestmark = pytest.mark.usefixtures("isolated_registry")


def flip_a_weight_byte(path: Path) -> None:
    """Flip one byte in the middle of the largest tensor of the checkpoint at ``path``, and
    check the damage is silent to torch: the state still loads, with another value."""
    raw = path.read_bytes()
    start = raw.index(b"\n") + 1
    payload = raw[start:]
    info = max((i for i in zipfile.ZipFile(io.BytesIO(payload)).infolist() if "/data/" in i.filename),
               key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", payload[info.header_offset + 26:info.header_offset + 30])
    at = start + info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    damaged = bytearray(raw)
    damaged[at] ^= 0x10
    path.write_bytes(bytes(damaged))
    before = torch.load(io.BytesIO(payload), weights_only=True)
    after = torch.load(io.BytesIO(bytes(damaged[start:])), weights_only=True)
    assert not all(torch.equal(a, b) for a, b in zip(tensors(before), tensors(after), strict=True)), \
        "the flipped byte should change a tensor of the loaded state"


def tensors(state) -> list[torch.Tensor]:
    """Every tensor in nested dicts and lists, in order."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for v in state.values() for t in tensors(v)]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in tensors(v)]
    return []


def test_a_checkpoint_round_trips_and_a_flipped_byte_is_refused(tmp_path):
    path = tmp_path / ".checkpoints" / "c.pt"
    state = {"weights": torch.linspace(0, 1, 4096), "step": 7, "names": ["a", "b"]}
    store.save_checkpoint(path, state)
    assert path.read_bytes().startswith(MAGIC) and [p.name for p in path.parent.iterdir()] == ["c.pt"]
    back = store.load_checkpoint(path)
    assert torch.equal(back["weights"], state["weights"]) and back["step"] == 7 and back["names"] == ["a", "b"]
    flip_a_weight_byte(path)
    with pytest.raises(store.DamagedCheckpoint, match="differs from what was written"):
        store.load_checkpoint(path)
    assert store.load_checkpoint(tmp_path / "none.pt") is None


def test_a_checkpoint_without_a_digest_is_refused(tmp_path):
    """A bare torch file (what this harness wrote before checkpoints carried digests)."""
    torch.save({"step": 1}, tmp_path / "old.pt")
    with pytest.raises(store.DamagedCheckpoint, match="without a digest"):
        store.load_checkpoint(tmp_path / "old.pt")


RING = ["--models", "gram", "--steps", "30", "--batch", "64", "--widths", "20", "--samples", "500",
        "--checkpoint-steps", "10"]


def test_a_damaged_but_loadable_checkpoint_is_named_and_training_starts_over(tmp_path, capsys):
    assert train.main([*RING, "--out", str(tmp_path)]) == 0
    out, = store.record_dirs(tmp_path)
    reference = (out / "samples.npy").read_bytes()
    cfg = RunConfig(model="gram", steps=30, batch=64, width=20, n_samples=500)
    checkpoint = store.stack_checkpoint(out, [cfg.key()])
    killed = StackRun([cfg], "cpu", LongRun(checkpoint_steps=10), checkpoint)  # what a kill at step 10 leaves
    killed.trainer.train(10)
    killed.save()
    flip_a_weight_byte(checkpoint)
    capsys.readouterr()
    assert train.main([*RING, "--out", str(tmp_path), "--force"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "checkpoint" in line]
    assert len(lines) == 1, lines
    assert f"ignoring the checkpoint {checkpoint}: it differs from what was written (checksum)" in lines[0]
    assert "training from step 0" in lines[0]
    assert (out / "samples.npy").read_bytes() == reference
    assert "resumed_from_step" not in store.read(out).run and not checkpoint.exists()
