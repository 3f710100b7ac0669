"""Augmenting training batches on the training device, repeatably: :class:`FrameAugment`.

The augmentations themselves are :mod:`snnkit.data.augment` (random crop, time jitter, channel dropout on padded
time-first frames). This callback applies them to every training batch after it reached the device (a batch a
frame store gathered on the GPU is augmented there) and draws their randomness from a generator seeded by
``(seed, epoch, step, rank)``. Nothing it draws depends on what ran before, so a run killed and resumed in the
middle of an epoch augments every later batch exactly as the uninterrupted run did, and two ranks of a DDP run
draw different crops. Test batches are never augmented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from snnkit.data import augment as A
from snnkit.validation import check_positive_int

from .batches import epoch_seed
from .callbacks import Callback

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["FrameAugment", "augment_callbacks", "batch_generator"]


def batch_generator(trainer: Trainer, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded by the run's seed, the epoch, the batch index in the epoch and the rank."""
    seed = (epoch_seed(trainer.seed, trainer.epoch) + 1_000_003 * trainer.step + 7_919 * trainer.info.rank) % 2**63
    return torch.Generator(device=device).manual_seed(seed)


class FrameAugment(Callback):
    """Random crop, time jitter and channel dropout of every training batch ``x [T, B, C, ...]``.

    Applied in that order: ``time_jitter`` shifts each sample by a whole number of frames in
    ``[-time_jitter, time_jitter]`` (zero-filled), ``crop`` cuts a window of ``crop`` frames at a uniform start
    inside each sample's own length (the batch then has ``T = crop``), ``channel_dropout`` silences each channel
    (dim 2) of each sample with that probability at every step, without rescaling (the values are spike counts).
    Crops and jitter use each sample's unpadded length when the loader provides it (the loop's own loader does
    whenever this callback is present), else the padded ``T``.

    Args:
        crop: window length in frames (``None``: no crop).
        time_jitter: largest shift in frames, >= 0 (0: none).
        channel_dropout: probability in ``[0, 1)`` (0: none).

    Raises:
        ValueError: an argument out of range (named in the message).
    """

    def __init__(self, *, crop: int | None = None, time_jitter: int = 0, channel_dropout: float = 0.0) -> None:
        self.crop = None if crop is None else check_positive_int("crop", crop)
        self.time_jitter = 0 if time_jitter == 0 else check_positive_int("time_jitter", time_jitter)
        if isinstance(channel_dropout, bool) or not isinstance(channel_dropout, (int, float)) or not (
            0.0 <= channel_dropout < 1.0
        ):
            raise ValueError(f"channel_dropout must be a number in [0, 1), got {channel_dropout!r}")
        self.channel_dropout = float(channel_dropout)

    @property
    def active(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.crop is not None or self.time_jitter > 0 or self.channel_dropout > 0

    def transform_batch(
        self, trainer: Trainer, x: Any, y: Any, lengths: torch.Tensor | None
    ) -> tuple[Any, Any, torch.Tensor | None]:
        if not self.active:
            return x, y, lengths
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"FrameAugment needs time-first frames x [T, B, C, ...], got {shape}")
        g = batch_generator(trainer, x.device)
        if lengths is None:
            lengths = torch.full((x.shape[1],), x.shape[0], dtype=torch.long, device=x.device)
        if self.time_jitter:
            x, lengths = A.time_jitter(x, lengths, self.time_jitter, g)
        if self.crop is not None:
            x, lengths = A.random_crop(x, lengths, self.crop, g)
        if self.channel_dropout:
            x = A.channel_dropout(x, self.channel_dropout, g)
        return x, y, lengths

    def __repr__(self) -> str:
        return (f"FrameAugment(crop={self.crop}, time_jitter={self.time_jitter}, "
                f"channel_dropout={self.channel_dropout})")


def augment_callbacks(cfg: Any) -> list[Callback]:
    """The :class:`FrameAugment` a :class:`~snnkit.training.TrainConfig` asks for (``crop``, ``time_jitter``,
    ``channel_dropout``), or none."""
    aug = FrameAugment(crop=cfg.crop, time_jitter=cfg.time_jitter, channel_dropout=cfg.channel_dropout)
    return [aug] if aug.active else []
