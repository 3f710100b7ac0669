"""Apply a per-sample module (conv, pooling, flatten) to every time step of a ``[T, B, ...]`` tensor at once."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TimeDistributed"]


class TimeDistributed(nn.Module):
    """Run ``module`` on ``[T * B, ...]`` and restore ``[T, B, ...]``: one batched call instead of a loop over T.

    Layers without state across time (Conv2d, pooling, Flatten) give the same result either way; batching the time
    axis lets them run as one large kernel. A single step ``[B, ...]`` is passed through unchanged when
    ``step_rank`` (the rank of one step, batch included) is given and matches.

    Args:
        module: the per-step module.
        step_rank: rank of a single-step input ``[B, ...]``; ``None`` means inputs are always ``[T, B, ...]``.
    """

    def __init__(self, module: nn.Module, step_rank: int | None = None) -> None:
        super().__init__()
        self.module = module
        self.step_rank = step_rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_rank is not None and x.dim() == self.step_rank:
            return self.module(x)
        if x.dim() < 3:
            raise ValueError(f"TimeDistributed expects [T, B, ...]; got shape {tuple(x.shape)}")
        t, b = x.shape[:2]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (t, b))
