"""Losses and predictions for per-step logits ``[T, B, K]`` (rate decoding: average the logits over time)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["time_mean", "rate_cross_entropy", "predict"]


def time_mean(out: torch.Tensor) -> torch.Tensor:
    """``[T, B, K] -> [B, K]`` by averaging over time; ``[B, K]`` is returned unchanged."""
    if out.dim() == 3:
        return out.mean(0)
    if out.dim() == 2:
        return out
    raise ValueError(f"expected logits [T, B, K] or [B, K], got shape {tuple(out.shape)}")


def rate_cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the time-averaged logits (mean over the batch).

    Averaging logits before the softmax (rather than averaging per-step losses) is the usual BPTT objective for
    rate-coded SNN classifiers; it lets early steps be uncertain as long as the sequence as a whole decides.
    Computed in float32 so a bf16 autocast forward does not degrade the loss.
    """
    return F.cross_entropy(time_mean(out).float(), target)


def predict(out: torch.Tensor) -> torch.Tensor:
    """Class index per sample: argmax of the time-averaged logits."""
    return time_mean(out).argmax(-1)
