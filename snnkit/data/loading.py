"""Batching variable-length frame sequences time-first: ``[T_max, B, ...]`` padded with zeros at the end."""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from ._checks import check_int
from .store import PaddedBatch

__all__ = ["pad_collate", "loader"]


def pad_collate(
    samples: Sequence[tuple[torch.Tensor, int]] | PaddedBatch, *, return_lengths: bool = False
) -> tuple[torch.Tensor, ...]:
    """Collate ``(frames [T_i, ...], label)`` samples into ``(x [T_max, B, ...] float32, y [B] long)``.

    Shorter sequences are padded with zeros after their last frame (silence: no spikes), so a network run over
    ``T_max`` steps sees each sample from its true start. With ``return_lengths`` a third tensor ``[B]`` (long)
    holds each ``T_i``, e.g. to read a readout out at a sample's own last step.

    A :class:`~snnkit.data.store.PaddedBatch` (what a dataset with a binned-frame store returns for a whole batch
    of indices) is already collated and is returned as it is.
    """
    if isinstance(samples, PaddedBatch):
        return tuple(samples) if return_lengths else (samples.x, samples.y)
    if len(samples) == 0:
        raise ValueError("cannot collate an empty batch")
    frames = [torch.as_tensor(sample[0], dtype=torch.float32) for sample in samples]
    shapes = {tuple(f.shape[1:]) for f in frames}
    if len(shapes) > 1 or frames[0].dim() < 1:
        got = [tuple(f.shape) for f in frames]
        raise ValueError(f"samples must be [T, ...] with equal trailing dimensions, got shapes {got}")
    x = pad_sequence(frames, batch_first=False, padding_value=0.0)  # [T_max, B, ...]
    y = torch.tensor([int(sample[1]) for sample in samples], dtype=torch.long)
    if return_lengths:
        return x, y, torch.tensor([f.shape[0] for f in frames], dtype=torch.long)
    return x, y


def _collate_to(samples: object, *, collate: functools.partial, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in collate(samples))


def loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    *,
    seed: int | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    return_lengths: bool = False,
    device: str | torch.device | None = None,
    **kwargs: object,
) -> DataLoader:
    """A ``torch.utils.data.DataLoader`` yielding time-first batches ``(x [T, B, ...], y [B])``.

    Args:
        dataset: items ``(frames [T, ...], label)``, e.g. :class:`~snnkit.data.SHD`, :class:`~snnkit.data.CIFAR10DVS`.
        batch_size: samples per batch, >= 1.
        shuffle: reshuffle every epoch.
        seed: seed of the shuffling order (a ``torch.Generator`` of its own, so the global RNG is neither used nor
            advanced); None draws from torch's global RNG, as DataLoader does.
        num_workers: worker processes, >= 0.
        drop_last: drop the last incomplete batch.
        return_lengths: yield ``(x, y, lengths)`` with each sample's unpadded T.
        device: where the batches are delivered. A dataset opened with ``store=`` (:mod:`snnkit.data.store`) has
            its whole store copied there once and every batch gathered there; any other dataset's batches are
            moved there after collating. A non-CPU device needs ``num_workers=0``. None: CPU tensors.
        **kwargs: passed on to ``DataLoader`` (``pin_memory``, ``persistent_workers``, ``sampler``, ...).
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_workers = check_int("num_workers", num_workers, minimum=0)
    if not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be a bool, got {shuffle!r}")
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    # a partial of a module-level function pickles, so it also works with spawned workers
    collate = functools.partial(pad_collate, return_lengths=return_lengths)
    if device is not None:
        device = torch.device(device)
        if device.type != "cpu" and num_workers > 0:
            raise ValueError(
                f"device={str(device)!r} with num_workers={num_workers}: worker processes cannot hand over "
                f"{device.type} tensors; use num_workers=0 (a store gathers whole batches in the main process)"
            )
        store = getattr(dataset, "store", None)
        if store is not None:
            dataset = copy.copy(dataset)  # the caller's dataset keeps its store where it was
            dataset.store = store.to(device)  # type: ignore[attr-defined]
        else:
            collate = functools.partial(_collate_to, collate=collate, device=device)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=collate,
        generator=generator,
        **kwargs,
    )
