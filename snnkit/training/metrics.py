"""Training metrics: spike counting via forward hooks, per-epoch accumulators, and the ``metrics.jsonl`` log."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.atomic import atomic_write_bytes

__all__ = [
    "is_neuron",
    "neuron_modules",
    "SpikeCounter",
    "EpochStats",
    "append_jsonl",
    "read_jsonl",
    "truncate_jsonl",
]


def is_neuron(module: nn.Module) -> bool:
    """True for snnkit spiking neurons (:class:`snnkit.neurons.StatefulNeuron` subclasses: LIF, ParametricLIF...)."""
    from snnkit.neurons import StatefulNeuron

    return isinstance(module, StatefulNeuron)


def neuron_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every snnkit neuron in ``model``, in registration order."""
    return [(n, m) for n, m in model.named_modules() if is_neuron(m)]


class SpikeCounter:
    """Count the spikes every snnkit neuron in ``model`` emits, via forward hooks.

    Counts stay on the model's device as tensors (no host sync per batch); read them with :meth:`totals`. While
    ``record`` is set, each neuron layer's last output is also kept (detached) for raster plots.

    Use as a context manager or call :meth:`close` to remove the hooks.
    """

    def __init__(self, model: nn.Module) -> None:
        self.names = [n for n, _ in neuron_modules(model)]
        self.spikes: torch.Tensor | float = 0.0
        self.neuron_steps = 0
        self.record = False
        self.recorded: dict[str, torch.Tensor] = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in neuron_modules(model)]

    def _hook(self, name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, torch.Tensor):
                return
            out = out.detach()
            self.spikes = self.spikes + out.float().sum()
            self.neuron_steps += out.numel()
            if self.record:
                self.recorded[name] = out

        return hook

    def reset(self) -> None:
        """Zero the counts (the hooks stay)."""
        self.spikes = 0.0
        self.neuron_steps = 0

    def totals(self) -> tuple[float, int]:
        """``(spikes, neuron-steps)`` since the last :meth:`reset`."""
        s = self.spikes.item() if isinstance(self.spikes, torch.Tensor) else float(self.spikes)
        return s, self.neuron_steps

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> SpikeCounter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class EpochStats:
    """Sums over the batches of one epoch so far; checkpointed mid-epoch so a resumed epoch reports the same totals."""

    loss_sum: float = 0.0  # sum over samples of the per-sample loss
    correct: int = 0
    samples: int = 0
    spikes: float = 0.0
    neuron_steps: int = 0
    batches: int = 0
    seconds: float = 0.0  # wall time spent in training steps (not reproducible; informative only)

    def update(self, loss: float, correct: int, n: int, spikes: float, neuron_steps: int, seconds: float) -> None:
        self.loss_sum += loss * n
        self.correct += correct
        self.samples += n
        self.spikes += spikes
        self.neuron_steps += neuron_steps
        self.batches += 1
        self.seconds += seconds

    def merge(self, other: EpochStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.samples, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.samples, 1)

    @property
    def spike_rate(self) -> float:
        """Spikes per neuron per time step."""
        return self.spikes / max(self.neuron_steps, 1)

    @property
    def spikes_per_s(self) -> float:
        """Spikes simulated per second of wall-clock training time (throughput)."""
        return self.spikes / self.seconds if self.seconds > 0 else 0.0

    def as_tensor(self) -> torch.Tensor:
        """Pack for ``all_reduce`` (float64 keeps integer counts exact far beyond any dataset size)."""
        return torch.tensor([float(getattr(self, f.name)) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> EpochStats:
        vals = t.tolist()
        out = cls()
        for f, v in zip(fields(cls), vals, strict=True):
            setattr(out, f.name, type(getattr(out, f.name))(v))
        return out

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochStats:
        return cls(**state)


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (each line is complete or absent after a crash)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records of a JSON-lines file; a torn last line (killed mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_jsonl(path: str | os.PathLike, keep: Iterable[dict[str, Any]]) -> None:
    """Atomically rewrite ``path`` to hold exactly ``keep`` (used on resume to drop epochs after the checkpoint)."""
    text = "".join(json.dumps(r) + "\n" for r in keep)
    atomic_write_bytes(path, text.encode("utf-8"))
