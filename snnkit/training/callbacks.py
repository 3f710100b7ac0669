"""Hooks into the training loop: schedules, clamps, logging, early stops.

Subclass :class:`Callback` and override the hooks you need; each receives the :class:`~snnkit.training.Trainer`
(``trainer.model``, ``trainer.optimizers``, ``trainer.epoch``, ``trainer.step``, ``trainer.global_step``,
``trainer.history``, ...). A plain callable ``f(trainer)`` in ``callbacks`` is a per-batch callback. Raising from
any hook stops the run (the last checkpoint stays valid, so it can be resumed).

Order within an epoch (``trainer.epoch`` is the 0-based index of the epoch throughout)::

    on_train_start                       once per fit() call, fresh or resumed, after the checkpoint is loaded
    on_epoch_start                       not when resuming into the middle of an epoch
      transform_batch                    every batch, once it is on the device: may return a changed batch
      [batch: method step, scheduler step (interval "step"), counters advance]
      on_batch_end                       every batch, before a mid-epoch checkpoint
    [scheduler step (interval "epoch"), evaluation, the epoch's record appended to trainer.history]
    on_epoch_end                         may change hyperparameters (checkpointed) or add keys to history[-1]
    [metrics.jsonl, checkpoint, plots]

State. A callback that keeps state of its own (a counter, a best score) returns it from :meth:`state_dict`; it is
saved in every checkpoint and handed back to :meth:`load_state_dict` on resume, matched by the callback's class name
and its position among callbacks of that class. What a callback changes in the model or the optimisers is
checkpointed with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["Callback", "as_callbacks"]


class Callback:
    """Base class of training hooks; every hook is a no-op unless overridden."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Once per ``fit`` call, before the first batch (after a checkpoint was loaded, when resuming)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """At the start of each epoch (not when a resumed run continues in the middle of one)."""

    def transform_batch(
        self, trainer: Trainer, x: Any, y: Any, lengths: torch.Tensor | None
    ) -> tuple[Any, Any, torch.Tensor | None]:
        """Before each training batch's step, with the batch on the training device: return the batch to train on
        (augmentations; see :class:`~snnkit.training.FrameAugment`). ``lengths [B]`` holds each sample's unpadded
        ``T`` when the loop builds the loader from a Dataset, else ``None``. Callbacks transform in their order.
        Derive any randomness from ``trainer.seed``, ``trainer.epoch`` and ``trainer.step`` (not a stream that
        advances), so a resumed run draws what the uninterrupted one drew. The default returns the batch as it is.
        """
        return x, y, lengths

    def on_batch_end(self, trainer: Trainer) -> None:
        """After each training batch (optimiser and scheduler steps done, ``trainer.step`` advanced)."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After the epoch's evaluation and record (``trainer.history[-1]``), before its checkpoint."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to save in checkpoints; ``None`` (the default) saves nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class _BatchFunction(Callback):
    """A plain callable ``f(trainer)`` run after every batch."""

    def __init__(self, fn: Callable[[Trainer], Any]) -> None:
        self.fn = fn

    def on_batch_end(self, trainer: Trainer) -> None:
        self.fn(trainer)


def as_callbacks(callbacks: Iterable[Callback | Callable[[Trainer], Any]] | None) -> list[Callback]:
    """:class:`Callback` instances as given; plain callables wrapped as per-batch callbacks.

    Raises:
        TypeError: an entry is neither (naming ``callbacks``).
    """
    out: list[Callback] = []
    for cb in callbacks or ():
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_BatchFunction(cb))
        else:
            raise TypeError(f"callbacks entries must be Callback instances or callables f(trainer), got {cb!r}")
    return out


def transforms_batches(callbacks: Iterable[Callback]) -> bool:
    """True when a callback overrides :meth:`Callback.transform_batch` (the loader then also yields lengths)."""
    return any(type(cb).transform_batch is not Callback.transform_batch for cb in callbacks)


def callback_keys(callbacks: Iterable[Callback]) -> list[str]:
    """A checkpoint key per callback: its class name and its position among callbacks of that class."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__qualname__
        keys.append(f"{name}#{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys
