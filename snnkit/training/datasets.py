"""Dataset names -> snnkit.data datasets, and the loaders the training loop uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from .config import DATASETS, TrainConfig

__all__ = ["DataBundle", "build_datasets", "make_loader", "NUM_CLASSES"]

#: Classes per dataset (SHD 20 = 10 digits x 2 languages; SSC 35 commands; CIFAR10-DVS 10).
NUM_CLASSES = {"spoken-digits": 20, "shd": 20, "ssc": 35, "cifar10dvs": 10}


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
    """Open the train and test splits of ``cfg.dataset`` through :mod:`snnkit.data`."""
    from snnkit import data  # imported here so the training package itself does not need the data stack

    name = cfg.dataset
    # Audio: --time-steps crops each recording to that many dt bins (T <= time_steps).
    audio = {"dt_ms": cfg.dt_ms, "max_duration_ms": cfg.time_steps * cfg.dt_ms if cfg.time_steps else None}
    if name == "spoken-digits":
        train, test = data.SpokenDigits(split="train", **audio), data.SpokenDigits(split="test", **audio)
    elif name == "shd":
        audio["download"] = cfg.download
        train, test = data.SHD(cfg.root, split="train", **audio), data.SHD(cfg.root, split="test", **audio)
    elif name == "ssc":
        audio["download"] = cfg.download
        train, test = data.SSC(cfg.root, split="train", **audio), data.SSC(cfg.root, split="test", **audio)
    elif name == "cifar10dvs":
        dvs = {"time_steps": cfg.time_steps or 10, "size": cfg.size, "download": cfg.download}
        train = data.CIFAR10DVS(cfg.root, split="train", **dvs)
        test = data.CIFAR10DVS(cfg.root, split="test", **dvs)
    else:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    frames, _ = train[0]
    num_classes = int(getattr(train, "num_classes", NUM_CLASSES[name]))
    return DataBundle(train, test, tuple(frames.shape[1:]), num_classes)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    sampler: Sampler[int] | None,
    workers: int,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader yielding time-first batches ``x [T, B, ...]`` (zero-padded to the longest sample), ``y [B]``.

    Built by :func:`snnkit.data.loader` with the given ``sampler`` (the seeded, resumable order) and a generator of
    its own (``loader.generator``): without one, creating each iterator would draw the worker base seed from the
    global torch RNG, which a resumed run would do at a different point. The loop re-seeds that generator at
    every epoch start.
    """
    from snnkit import data

    kwargs: dict[str, Any] = {"sampler": sampler}
    if pin_memory:
        kwargs["pin_memory"] = True
    # shuffle=False: the order comes from the sampler (DataLoader forbids shuffle together with a sampler).
    return data.loader(dataset, batch_size, False, seed=0, num_workers=workers, **kwargs)
