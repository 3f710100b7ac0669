"""Where the loop's batches come from: the three kinds of data :func:`snnkit.training.fit` accepts.

Training data, ``(x [T, B, ...], y)`` batches from one of:

a) a map-style :class:`~torch.utils.data.Dataset` of ``(frames [T, ...], label)`` samples: fit builds the loader
   itself (``batch_size``, zero-padded time-first batches as :func:`snnkit.data.loader` makes them);
b) a :class:`~torch.utils.data.DataLoader` over a map-style dataset with the default batch sampler
   (``shuffle=True`` or ``False``, no custom sampler): fit re-creates it with the same dataset, batch size, collate
   function, workers, pinning, ``drop_last``, ``worker_init_fn``, ... but with a
   :class:`~snnkit.training.sampler.ResumableSampler` (shuffling iff the loader shuffled). The order of every epoch
   is then a pure function of ``(seed, epoch)``, DDP gives each process its own shard, and a mid-epoch resume skips
   the indices already trained on without loading them (PyTorch Lightning re-creates loaders the same way to insert
   its DistributedSampler). The loader's own generator or sampler seed is not used;
c) any other iterable of batches (a list, a DataLoader over an IterableDataset or with a custom sampler, an object
   whose ``__iter__`` starts a new pass): iterated once per epoch, with the global torch / numpy / random RNGs
   seeded from ``(seed, epoch)`` while the iterator is created and its first batch drawn (then restored, so
   training randomness is unaffected); a mid-epoch resume skips the first ``step`` batches by iterating over them.
   Exact resume needs the iterable to be deterministic given that seeding (no randomness drawn later in the pass).
   Under DDP an iterable is not sharded: give each process its own shard with the same number of batches.

Test data: the same kinds, never shuffled. A dataset or re-creatable loader is split across DDP processes without
padding (rank r takes samples r, r + world, ...), an iterable by batches (rank r evaluates batches r, r + world,
...), so the summed metrics are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
)

from .checkpoint import capture_rng_state, restore_rng_state
from .datasets import make_loader
from .sampler import ResumableSampler

__all__ = ["TrainBatches", "EvalBatches", "epoch_seed", "seed_all"]

_END = object()


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python ``random``."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Distinct per ``(seed, epoch)`` and independent of how many batches ran before: the loader generator (and for
    iterables the global RNGs) are seeded from this at every epoch start, resumed or not."""
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % 2**63


def _is_map_dataset(data: Any) -> bool:
    return isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__")


def _recreatable(loader: Any) -> bool | None:
    """For a DataLoader over a map-style dataset with the default batch sampler: whether it shuffles; else None."""
    if not isinstance(loader, DataLoader) or not _is_map_dataset(loader.dataset) or loader.batch_size is None:
        return None
    if type(loader.batch_sampler) is not BatchSampler:
        return None
    sampler = loader.sampler
    if type(sampler) is SequentialSampler:
        return False
    if type(sampler) is RandomSampler and not sampler.replacement and sampler._num_samples is None:
        return True
    return None


def _rebuild(loader: DataLoader, dataset: Dataset, sampler: Any) -> DataLoader:
    """``loader``'s settings on ``dataset`` with ``sampler`` and a generator of its own (re-seeded by the loop)."""
    extra: dict[str, Any] = {}
    if loader.num_workers > 0:
        extra["prefetch_factor"] = loader.prefetch_factor
        extra["persistent_workers"] = loader.persistent_workers
    if hasattr(loader, "in_order"):
        extra["in_order"] = loader.in_order
    return DataLoader(
        dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=torch.Generator(),
        pin_memory_device=loader.pin_memory_device,
        **extra,
    )


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


class TrainBatches:
    """The training batches of every epoch, in an order fixed by ``(seed, epoch)``, startable mid-epoch.

    Args:
        data: a map-style dataset, a re-creatable DataLoader or an iterable of batches (see the module docstring).
        batch_size: samples per batch for a dataset (ignored otherwise).
        seed: base seed of the order.
        world_size, rank: DDP process count and this process's rank.
        workers, pin_memory: loader settings for a dataset.
        device: where a dataset with a frame store gathers its batches (see :func:`make_loader`).
        lengths: a dataset's batches are ``(x, y, lengths)`` (for batch transforms; other data is yielded as is).

    Attributes:
        kind: "dataset", "loader" or "iterable".
        length: batches per epoch on this process, ``None`` when unknown (an iterable without ``len``).
        sampler: the :class:`ResumableSampler` (``None`` for an iterable).
    """

    def __init__(
        self,
        data: Any,
        batch_size: int,
        seed: int,
        world_size: int = 1,
        rank: int = 0,
        workers: int = 0,
        pin_memory: bool = False,
        device: torch.device | None = None,
        lengths: bool = False,
    ) -> None:
        self.data, self.seed = data, seed
        self.sampler: ResumableSampler | None = None
        self.loader: DataLoader | None = None
        shuffle = _recreatable(data)
        if _is_map_dataset(data) and not isinstance(data, DataLoader):
            self.kind = "dataset"
            self.sampler = ResumableSampler(data, world_size, rank, shuffle=True, seed=seed)
            self.loader = make_loader(data, batch_size, self.sampler, workers, pin_memory, device, lengths)
        elif shuffle is not None:
            self.kind = "loader"
            self.sampler = ResumableSampler(data.dataset, world_size, rank, shuffle=shuffle, seed=seed)
            self.loader = _rebuild(data, data.dataset, self.sampler)
        elif isinstance(data, Iterable):
            self.kind = "iterable"
        else:
            raise TypeError(
                "train_data must be a map-style Dataset, a DataLoader or an iterable of (x, y) batches, "
                f"got {type(data).__name__}"
            )
        if self.loader is not None and self.sampler is not None:
            bs = self.loader.batch_size
            n = self.sampler.num_samples
            self.batch_size: int | None = bs
            self.length: int | None = n // bs if self.loader.drop_last else math.ceil(n / bs)
        else:
            self.batch_size = None
            self.length = _length(data)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """An iterator over epoch ``epoch``'s batches from batch ``start`` on; never touches the global RNG state."""
        if self.loader is not None and self.sampler is not None:
            assert self.batch_size is not None
            self.sampler.set_epoch(epoch)
            self.sampler.set_start(min(start * self.batch_size, self.sampler.num_samples))
            assert self.loader.generator is not None
            self.loader.generator.manual_seed(epoch_seed(self.seed, epoch))
            with torch.random.fork_rng(devices=[]):
                return iter(self.loader)
        return self._iterate(epoch, start)

    def _iterate(self, epoch: int, start: int) -> Iterator[Any]:
        saved = capture_rng_state()
        try:
            seed_all(epoch_seed(self.seed, epoch))
            it = iter(self.data)
            first = next(it, _END)
        finally:
            restore_rng_state(saved)
        if first is _END:
            return
        if start == 0:
            yield first
        for _ in range(start - 1):
            if next(it, _END) is _END:
                return
        yield from it

    def state_dict(self) -> dict[str, Any]:
        """What determines the remaining order (informative; the loop recomputes it from the counters)."""
        state: dict[str, Any] = {"kind": self.kind, "seed": self.seed}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state


class EvalBatches:
    """The test batches of this process, in a fixed order; see the module docstring for the DDP split."""

    def __init__(
        self, data: Any, batch_size: int, world_size: int = 1, rank: int = 0, workers: int = 0, pin: bool = False,
        device: torch.device | None = None,
    ) -> None:
        self.data, self.world_size, self.rank = data, world_size, rank
        self.loader: DataLoader | None = None
        if _is_map_dataset(data) and not isinstance(data, DataLoader):
            part = Subset(data, list(range(rank, len(data), world_size))) if world_size > 1 else data
            self.loader = make_loader(part, batch_size, SequentialSampler(part), workers, pin, device)
        elif _recreatable(data) is not None:
            base = data.dataset
            part = Subset(base, list(range(rank, len(base), world_size))) if world_size > 1 else base
            self.loader = _rebuild(data, part, SequentialSampler(part))
        elif not isinstance(data, Iterable):
            raise TypeError(
                "test_data must be a map-style Dataset, a DataLoader or an iterable of (x, y) batches, "
                f"got {type(data).__name__}"
            )

    def __iter__(self) -> Iterator[Any]:
        if self.loader is not None:
            assert self.loader.generator is not None
            self.loader.generator.manual_seed(0)  # the same worker seeds at every evaluation
            return iter(self.loader)
        return (b for i, b in enumerate(self.data) if i % self.world_size == self.rank)

    def first_sample(self) -> tuple[Any, Any] | None:
        """This process's first test sample as a batch of one, ``(x [T, 1, ...], y [1])``: collated on its own
        (no padding to a longer neighbour) when the data is a dataset or loader, else cut from the first batch."""
        if self.loader is not None:
            dataset = self.loader.dataset
            if len(dataset) == 0:  # type: ignore[arg-type]
                return None
            batch = self.loader.collate_fn([dataset[0]])
        else:
            batch = next(iter(self), None)
            if batch is None:
                return None
            x, y = batch
            batch = (x[:, :1] if isinstance(x, torch.Tensor) and x.dim() >= 2 else x, y[:1])
        return batch
