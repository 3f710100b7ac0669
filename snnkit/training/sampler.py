"""A shuffling sampler whose order is a pure function of (seed, epoch) and that can start mid-epoch.

Exact resume needs the resumed run to see the same remaining samples in the same order as the uninterrupted run.
:class:`torch.utils.data.DistributedSampler` already draws each epoch's permutation from a fresh generator seeded
with ``seed + epoch`` (nothing carried between epochs, so nothing to checkpoint besides those two numbers) and
splits it across ranks. This subclass adds ``start``: skip the first ``start`` indices of this rank's share, i.e.
the ``batches_done * batch_size`` samples a mid-epoch checkpoint says were already trained on. Skipping indices
(rather than drawing and discarding batches) costs nothing and never touches the data.

With ``num_replicas=1, rank=0`` it is an ordinary seeded shuffling sampler, so single-process and DDP training share
one code path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

from torch.utils.data import DistributedSampler

__all__ = ["ResumableSampler"]


class ResumableSampler(DistributedSampler):
    """DistributedSampler with a resumable start offset.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas, rank: data-parallel world size and this process's rank (1, 0 without DDP).
        shuffle: permute every epoch (seeded by ``seed + epoch``).
        seed: base seed; must be the same on every rank.
        drop_last: as in DistributedSampler (drop the tail instead of padding when it does not divide evenly).
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip this many of this rank's indices in the current epoch (reset with ``set_start(0)``)."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"ResumableSampler: start must be in [0, {self.num_samples}], got {start}")
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start

    def state_dict(self) -> dict[str, Any]:
        """What determines the remaining order: seed, epoch and start offset."""
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start, "num_replicas": self.num_replicas}
