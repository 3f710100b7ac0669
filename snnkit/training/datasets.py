"""Dataset names -> snnkit.data datasets (through :data:`snnkit.data.DATASETS`), and the loaders the loop uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .config import TrainConfig

__all__ = ["DataBundle", "build_datasets", "make_loader"]


@dataclass
class DataBundle:
    """Train and test sets plus what the model needs to know about one sample.

    Attributes:
        train, test: datasets yielding ``(frames [T, *in_shape], label)``.
        in_shape: one time step of one sample, e.g. ``(140,)`` or ``(2, 48, 48)``.
        num_classes: number of labels.
    """

    train: Dataset
    test: Dataset
    in_shape: tuple[int, ...]
    num_classes: int


def build_datasets(cfg: TrainConfig) -> DataBundle:
    """Open the train and test splits of the registered dataset ``cfg.dataset`` (:data:`snnkit.data.DATASETS`).

    Raises:
        ValueError: ``cfg.dataset`` is not registered (the message lists the valid names).
    """
    from snnkit import data  # imported here so the training package itself does not need the data stack

    settings = data.DatasetSettings(
        root=cfg.root, download=cfg.download, dt_ms=cfg.dt_ms, time_steps=cfg.time_steps, size=cfg.size,
        store=cfg.store,
    )
    train = data.build_dataset(cfg.dataset, "train", settings)
    test = data.build_dataset(cfg.dataset, "test", settings)
    frames, _ = train[0]
    return DataBundle(train, test, tuple(frames.shape[1:]), train.num_classes)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    sampler: Sampler[int] | None,
    workers: int,
    pin_memory: bool = False,
    device: torch.device | None = None,
    return_lengths: bool = False,
) -> DataLoader:
    """A loader yielding time-first batches ``x [T, B, ...]`` (zero-padded to the longest sample), ``y [B]``.

    Built by :func:`snnkit.data.loader` with the given ``sampler`` (the seeded, resumable order) and a generator of
    its own (``loader.generator``): without one, creating each iterator would draw the worker base seed from the
    global torch RNG, which a resumed run would do at a different point. The loop re-seeds that generator at
    every epoch start.

    A dataset opened with a frame store (``store=``, :mod:`snnkit.data.store`) and loaded without worker processes
    is moved to ``device`` once, so every batch is gathered there (no per-batch host-to-device copy); otherwise
    ``device`` is unused and the loop moves each batch. ``return_lengths``: yield ``(x, y, lengths [B])``.
    """
    from snnkit import data

    kwargs: dict[str, Any] = {"sampler": sampler}
    if device is not None and workers == 0 and getattr(dataset, "store", None) is not None:
        kwargs["device"] = device
    elif pin_memory:
        kwargs["pin_memory"] = True
    # shuffle=False: the order comes from the sampler (DataLoader forbids shuffle together with a sampler).
    return data.loader(dataset, batch_size, False, seed=0, num_workers=workers, return_lengths=return_lengths, **kwargs)
