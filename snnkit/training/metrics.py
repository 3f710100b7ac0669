"""Training metrics: pluggable :class:`Metric` objects (:data:`METRICS`), spike counting via forward hooks, the
per-epoch sums kept on the device, and the ``metrics.jsonl`` log."""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.atomic import atomic_write_text
from snnkit.registry import Registry

from .losses import predict

__all__ = [
    "is_neuron",
    "neuron_modules",
    "SpikeCounter",
    "Metric",
    "Accuracy",
    "METRICS",
    "get_metrics",
    "EpochSums",
    "append_jsonl",
    "read_jsonl",
    "truncate_jsonl",
]


def is_neuron(module: nn.Module) -> bool:
    """True for snnkit spiking neurons (:class:`snnkit.neurons.StatefulNeuron` subclasses that emit spikes: LIF,
    ParametricLIF...; not the non-spiking leaky-integrator readout)."""
    from snnkit.neurons import StatefulNeuron

    return isinstance(module, StatefulNeuron) and module.spiking


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


class Metric(abc.ABC):
    """A pluggable metric: stateless; the loop keeps its running sums on the device.

    For every batch the loop adds :meth:`batch` (a 1-D float64 tensor of ``num_sums`` sums, computed on the logits'
    device without reading anything back to the host) to the epoch's running sums; those are summed over DDP ranks,
    checkpointed mid-epoch, and turned into the reported number once per epoch by :meth:`result`. Accuracy's sums
    are ``[correct, count]``; a bits-per-character metric would sum ``[nats, characters]`` the same way.

    Attributes:
        name: the registry name and the key in :attr:`TrainResult.test_metrics`.
        key: the record suffix in ``metrics.jsonl`` (``train_<key>``, ``test_<key>``).
        num_sums: length of the tensor :meth:`batch` returns.
        label, plot_scale: axis label and factor for ``curves.png`` (accuracy is drawn in percent).
    """

    name: str = ""
    key: str = ""
    num_sums: int = 1
    label: str = ""
    plot_scale: float = 1.0

    @abc.abstractmethod
    def batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sums for one batch: a float64 tensor ``[num_sums]`` on the logits' device."""

    @abc.abstractmethod
    def result(self, sums: torch.Tensor) -> float:
        """The metric from the sums over an epoch (a float64 CPU tensor ``[num_sums]``)."""

    def format(self, value: float) -> str:
        """How the value is shown in progress bars and epoch lines."""
        return f"{value:.4f}"


#: Metric name -> factory (called without arguments) of a :class:`Metric`.
METRICS: Registry[Callable[[], Metric]] = Registry("metric")


@METRICS.register("accuracy")
class Accuracy(Metric):
    """Fraction of samples whose predicted class (argmax of the time-averaged logits) equals the target."""

    name = "accuracy"
    key = "acc"
    num_sums = 2
    label = "accuracy (%)"
    plot_scale = 100.0

    def batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        correct = (predict(logits) == target).sum().to(torch.float64)
        # new_full fills on the device: no host-to-device copy of the count.
        return torch.stack([correct, correct.new_full((), target.numel())])

    def result(self, sums: torch.Tensor) -> float:
        correct, count = sums.tolist()
        return correct / count if count else 0.0

    def format(self, value: float) -> str:
        return f"{100 * value:.2f}%"


def get_metrics(metrics: str | Metric | Iterable[str | Metric]) -> list[Metric]:
    """Metric objects for names (looked up in :data:`METRICS`) and :class:`Metric` instances.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or two metrics with the same record key.
        TypeError: an entry is neither a name nor a Metric.
    """
    items = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    out: list[Metric] = []
    for m in items:
        if isinstance(m, str):
            m = METRICS.build(m)
        if not isinstance(m, Metric):
            raise TypeError(f"metrics entries must be registered names or Metric instances, got {m!r}")
        out.append(m)
    keys = [m.key for m in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"metrics: two metrics share a record key ({keys})")
    return out


_BASE = ("loss_sum", "samples", "spikes", "neuron_steps", "batches")


class EpochSums:
    """The sums of one epoch so far, kept on the training device so that no batch reads back to the host.

    ``values`` is one float64 tensor: the sample-weighted loss, the sample count, spikes, neuron-steps, batches, then
    each metric's sums (float64 keeps integer counts exact far beyond any dataset size). One tensor means one
    all-reduce under DDP and one host read per refresh. Checkpointed mid-epoch (:meth:`packed`) so a resumed
    epoch reports the same totals as an uninterrupted one.
    """

    def __init__(self, metrics: Sequence[Metric], device: torch.device | str = "cpu") -> None:
        self.metrics = list(metrics)
        size = len(_BASE) + sum(m.num_sums for m in self.metrics)
        self.values = torch.zeros(size, dtype=torch.float64, device=device)
        self.seconds = 0.0  # wall time spent in training steps (not reproducible; informative only)

    def add(
        self,
        loss: torch.Tensor,
        samples: int,
        spikes: torch.Tensor | float,
        neuron_steps: int,
        metric_sums: Sequence[torch.Tensor],
    ) -> None:
        """Accumulate one batch (``loss`` is its mean over ``samples``); device operations only."""
        v = self.values
        v[0].add_(loss.detach().to(torch.float64), alpha=samples)
        v[1].add_(samples)
        v[2].add_(spikes)
        v[3].add_(neuron_steps)
        v[4].add_(1)
        if metric_sums:
            v[len(_BASE) :].add_(torch.cat([s.reshape(-1) for s in metric_sums]))

    def packed(self) -> torch.Tensor:
        """The sums with the seconds appended: what is all-reduced, checkpointed and read by :meth:`summary`."""
        return torch.cat([self.values, self.values.new_full((1,), self.seconds)])

    def summary(self, packed: torch.Tensor) -> dict[str, float]:
        """Read ``packed`` sums (this rank's, or all ranks' after an all-reduce) back to the host, one
        synchronisation: ``loss``, ``samples``, ``spikes``, ``neuron_steps``, ``batches``, ``seconds``,
        ``spike_rate`` and each metric's value under its key."""
        host = packed.cpu()
        base = dict(zip(_BASE, host[: len(_BASE)].tolist(), strict=True))
        out = {k: base[k] for k in ("samples", "spikes", "neuron_steps", "batches")}
        out["seconds"] = float(host[-1])
        out["loss"] = base["loss_sum"] / max(base["samples"], 1.0)
        out["spike_rate"] = base["spikes"] / max(base["neuron_steps"], 1.0)  # spikes per neuron per time step
        at = len(_BASE)
        for m in self.metrics:
            out[m.key] = m.result(host[at : at + m.num_sums])
            at += m.num_sums
        return out

    def load_packed(self, packed: torch.Tensor) -> None:
        """Continue from sums saved with :meth:`packed` (a resumed epoch)."""
        if packed.shape != (self.values.numel() + 1,):
            raise ValueError(
                f"saved epoch sums have shape {tuple(packed.shape)}, expected ({self.values.numel() + 1},) "
                "(other metrics)"
            )
        self.values.copy_(packed[:-1])
        self.seconds = float(packed[-1])


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (each line is complete or absent after a crash); the directory is
    created if needed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
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
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))
