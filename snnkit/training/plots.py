"""PNG plots of a run: learning curves from ``metrics.jsonl`` and a spike raster of one sample.

Figures are drawn with matplotlib's object API on an Agg canvas, so no global backend is switched (importing this
module never changes what ``pyplot`` does in the caller's process) and no display is needed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from snnkit.atomic import atomic_write_bytes

__all__ = ["plot_learning_curves", "plot_raster"]


def _save(fig: Figure, path: str | os.PathLike) -> None:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    # Atomic like the checkpoint: a viewer polling the file never reads half a PNG.
    atomic_write_bytes(path, buf.getvalue())


def plot_learning_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    panels: Sequence[tuple[str, str, float]] = (("acc", "accuracy (%)", 100.0),),
) -> None:
    """Loss and each metric (train and test) per epoch from metrics records, side by side.

    Args:
        records: one mapping per epoch with ``epoch``, ``train_loss``, ``test_loss`` and ``train_<key>`` /
            ``test_<key>`` for each panel (a missing value, e.g. without test data, leaves a gap).
        path: the PNG to write (atomically).
        panels: ``(key, axis label, scale)`` per metric panel; values are multiplied by ``scale`` (100 for percent).
    """
    # Fixed margins instead of a layout engine: constrained layout costs about half a second per figure.
    n = 1 + len(panels)
    fig = Figure(figsize=(5 * n, 4))
    fig.subplots_adjust(left=0.07 * 2 / n, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    axes = fig.subplots(1, n, squeeze=False)[0]
    epochs = [r["epoch"] for r in records]

    def series(key: str, scale: float) -> list[float | None]:
        return [scale * r[key] if r.get(key) is not None else None for r in records]

    specs = [("loss", "loss", 1.0), *panels]
    for ax, (key, label, scale) in zip(axes, specs, strict=True):
        for split in ("train", "test"):
            if any(f"{split}_{key}" in r for r in records):
                ax.plot(epochs, series(f"{split}_{key}", scale), marker="o", label=split)
        ax.set(xlabel="epoch", ylabel=label, title=label.split(" (")[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_raster(
    layers: Mapping[str, torch.Tensor], path: str | os.PathLike, title: str = "", max_units: int = 256
) -> None:
    """One raster panel per layer: a dot at (t, unit) for each nonzero entry of a ``[T, units...]`` tensor.

    ``layers`` maps a panel name (e.g. "input", "features.2") to one sample's activity ``[T, ...]``; trailing dims
    are flattened. Layers wider than ``max_units`` show an evenly spaced subset of units, so conv layers stay legible.
    """
    if not layers:
        return
    height = 2.2 * len(layers) + 0.6
    fig = Figure(figsize=(10, height))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.45 / height, top=1 - 0.7 / height, hspace=0.45)
    axes = fig.subplots(len(layers), 1, squeeze=False)[:, 0]
    for ax, (name, act) in zip(axes, layers.items(), strict=True):
        a = act.detach().float().cpu().reshape(act.shape[0], -1)
        units = a.shape[1]
        if units > max_units:
            idx = torch.linspace(0, units - 1, max_units).round().long()
            a = a[:, idx]
        t, u = (a != 0).nonzero(as_tuple=True)
        # Marker size shrinks with the number of dots so dense layers stay readable.
        size = 12.0 if len(t) < 2000 else 4.0 if len(t) < 20000 else 1.0
        ax.scatter(t.numpy(), u.numpy(), s=size, c="k", marker="|", linewidths=0.8)
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.set_ylim(-0.5, a.shape[1] - 0.5)
        rate = (a != 0).float().mean().item()
        shown = f"{a.shape[1]} of {units}" if units > max_units else f"{units}"
        ax.set_title(f"{name}: {shown} units, {rate:.3f} spikes/unit/step", fontsize=9)
        ax.set_ylabel("unit")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("time step")
    if title:
        fig.suptitle(title)
    _save(fig, path)
