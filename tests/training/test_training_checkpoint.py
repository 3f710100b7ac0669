"""Checkpoint files: round trip, atomic replacement, and clear refusals of damaged or foreign files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from snnkit.training import CheckpointError, load_checkpoint, save_checkpoint
from snnkit.training import checkpoint as ckpt


def payload() -> dict:
    return {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "step": 7, "config": {"lr": 0.1, "x": [1, 2]}}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, payload())
    got = load_checkpoint(path)
    assert torch.equal(got["model"]["w"], payload()["model"]["w"])
    assert (got["epoch"], got["step"], got["config"]) == (3, 7, {"lr": 0.1, "x": [1, 2]})
    assert got["format"] == "snnkit-checkpoint"


@pytest.mark.parametrize("keep", [0, 5, 30, -1])
def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, payload())
    raw = path.read_bytes()
    path.write_bytes(raw[:keep] if keep >= 0 else raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, payload())
    raw = bytearray(path.read_bytes())
    raw[-40] ^= 0xFF  # one flipped byte inside the payload
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt checkpoint: checksum mismatch") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, plain)  # a plain torch checkpoint, not ours
    with pytest.raises(CheckpointError, match="not an snnkit checkpoint") as e:
        load_checkpoint(plain)
    assert "plain.pt" in str(e.value)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not an snnkit checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_payload_is_loaded_without_unpickling_code(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"evil": object()})  # not allowed by weights_only loading
    with pytest.raises(CheckpointError, match="unreadable checkpoint payload"):
        load_checkpoint(path)


def test_write_is_atomic_no_partial_file_visible(tmp_path: Path, monkeypatch) -> None:
    """While the new bytes are being written and synced, the target still holds the old complete checkpoint."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    seen: list[tuple[int, list[str]]] = []
    real_fsync = os.fsync

    def spying_fsync(fd: int) -> None:
        real_fsync(fd)
        if not seen:  # the first fsync is the temporary file's, just before the rename
            seen.append((load_checkpoint(path)["epoch"], sorted(p.name for p in tmp_path.iterdir())))

    monkeypatch.setattr(os, "fsync", spying_fsync)
    save_checkpoint(path, {"epoch": 2})
    old_epoch, listing = seen[0]
    assert old_epoch == 1
    assert "checkpoint.pt" in listing and any(n.startswith(".checkpoint.pt.") and n.endswith(".tmp") for n in listing)
    assert load_checkpoint(path)["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_failed_write_keeps_old_checkpoint_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_rng_state_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = ckpt.capture_rng_state()
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"rng": state})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    ckpt.restore_rng_state(load_checkpoint(path)["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
