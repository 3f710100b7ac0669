"""Checkpoints: atomic, checksummed, validated on load, and holding everything needed to resume exactly.

File layout (``checkpoint.pt``)::

    MAGIC (12 bytes) | sha256 of payload (32 bytes) | payload length, uint64 little endian (8 bytes) | payload

where the payload is a ``torch.save`` of a dict of plain types and tensors. The header lets :func:`load_checkpoint`
tell a truncated file (length short), a corrupt one (checksum) and a foreign one (magic) apart and say which, naming
the file, instead of surfacing a zip-reader error from deep inside ``torch.load``. The payload holds only tensors
and plain Python values, so it is read with ``torch.load(weights_only=True)``: loading a checkpoint never runs
pickled code.

Writes are atomic (:func:`snnkit.atomic.atomic_write_bytes`): a reader, or a run killed at any instant, sees
either the previous complete checkpoint or the new complete one, never a partial file.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.atomic import atomic_write_bytes

__all__ = [
    "CheckpointError",
    "CHECKPOINT_NAME",
    "save_checkpoint",
    "load_checkpoint",
    "require_keys",
    "model_signature",
    "check_model_matches",
    "capture_rng_state",
    "restore_rng_state",
]

MAGIC = b"SNNKITCKPT1\n"
_HEADER = struct.Struct("<32sQ")  # sha256 digest, payload length
FORMAT_VERSION = 2  # 2: lists of optimiser and scheduler states, callback states, device-side epoch sums
#: File name of the latest checkpoint inside a run directory.
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, of another format, or from a different model."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """Serialise ``payload`` (tensors and plain Python values only) and write it atomically with a checksum."""
    buf = io.BytesIO()
    torch.save({"format": "snnkit-checkpoint", "version": FORMAT_VERSION, **payload}, buf)
    body = buf.getvalue()
    header = MAGIC + _HEADER.pack(hashlib.sha256(body).digest(), len(body))
    atomic_write_bytes(path, header + body)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: naming ``path``, when the file is missing, not an snnkit checkpoint, truncated, corrupt
            (checksum mismatch), or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    raw = path.read_bytes()
    head = len(MAGIC) + _HEADER.size
    if len(raw) < head:
        if MAGIC.startswith(raw[: len(MAGIC)]):
            raise CheckpointError(path, f"truncated checkpoint: only {len(raw)} bytes, header needs {head}")
        raise CheckpointError(path, "not an snnkit checkpoint (unknown header)")
    if raw[: len(MAGIC)] != MAGIC:
        raise CheckpointError(path, "not an snnkit checkpoint (unknown header)")
    digest, length = _HEADER.unpack_from(raw, len(MAGIC))
    body = raw[head:]
    if len(body) != length:
        what = "truncated" if len(body) < length else "has trailing bytes"
        raise CheckpointError(path, f"checkpoint {what}: payload is {len(body)} bytes, header says {length}")
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(path, "corrupt checkpoint: checksum mismatch (the file was modified or damaged)")
    try:
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as e:  # the checksum matched, so this is a writer/reader version problem
        raise CheckpointError(path, f"unreadable checkpoint payload: {type(e).__name__}: {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != "snnkit-checkpoint":
        raise CheckpointError(path, "not an snnkit checkpoint (payload has no snnkit format tag)")
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(path, f"checkpoint format version {payload.get('version')}, expected {FORMAT_VERSION}")
    return payload


def require_keys(path: str | os.PathLike, payload: Mapping[str, Any], keys: tuple[str, ...] | list[str]) -> None:
    """Refuse a checkpoint that passed its checksum but lacks entries a resume needs (another writer, or an older
    or edited file), naming the file and the missing keys instead of failing later with a ``KeyError``."""
    missing = [k for k in keys if k not in payload]
    if missing:
        raise CheckpointError(
            path, f"checkpoint lacks {', '.join(repr(k) for k in missing)} (expected a complete snnkit training "
            "checkpoint; was it written by another program or edited?)"
        )


def model_signature(model: nn.Module) -> list[list[Any]]:
    """``[[name, shape, dtype], ...]`` of every parameter and buffer: what must match to load a state dict.
    (A module's extra state, e.g. a delay layer's sigma, is not a tensor and is left out.)"""
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor)]


def check_model_matches(path: str | os.PathLike, payload: Mapping[str, Any], model: nn.Module, model_name: str) -> None:
    """Refuse a checkpoint written for another architecture, naming the file and the first differences."""
    saved_name = payload.get("model_name")
    if saved_name is not None and saved_name != model_name:
        raise CheckpointError(path, f"checkpoint is for model {saved_name!r}, not {model_name!r}")
    saved = {k: (tuple(s), d) for k, s, d in payload.get("model_signature", [])}
    here = {k: (tuple(s), d) for k, s, d in model_signature(model)}
    if saved == here:
        return
    problems = [f"missing in checkpoint: {k}" for k in here if k not in saved]
    problems += [f"unexpected in checkpoint: {k}" for k in saved if k not in here]
    problems += [
        f"{k}: checkpoint {saved[k][0]} vs model {here[k][0]}" for k in here if k in saved and saved[k] != here[k]
    ]
    shown = "; ".join(problems[:5]) + (f"; ... ({len(problems) - 5} more)" if len(problems) > 5 else "")
    raise CheckpointError(path, f"checkpoint does not match model {model_name!r}: {shown}")


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states of torch (CPU and every CUDA device), numpy and Python ``random``, as plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # numpy's key array becomes a tensor so the payload stays weights_only-loadable.
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x
