"""How a model's per-step outputs become one score per class: the one rule every consumer (the attacks, the training
loop's raster plot) applies to any model."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["class_scores"]


def class_scores(model: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Scores ``[B, K]`` of ``out = model(x)``: the model's own ``class_scores(out)`` when it defines one (the delay
    SNN's ``sum_t softmax(v_t)``), else the time-averaged logits (rate decoding); ``[B, K]`` is returned as it is.

    Raises:
        ValueError: ``out`` is not ``[T, B, K]`` or ``[B, K]``.
    """
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model must return logits [T, B, K] or [B, K], got {shape}")
    if out.dim() == 2:
        return out
    decode = getattr(model, "class_scores", None)
    return decode(out) if callable(decode) else out.mean(0)
