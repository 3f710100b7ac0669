"""Losses and predictions for per-step logits ``[T, B, K]`` (rate decoding: average the logits over time).

:data:`LOSSES` is the table :func:`snnkit.training.fit` looks ``loss="..."`` up in. An entry is a factory called
without arguments that returns the loss function ``(logits, target) -> scalar`` (mean over the batch); the same
function scores training batches and the test set. Instead of a name, ``fit`` also takes any such callable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from snnkit.layers.readout import softmax_sum
from snnkit.registry import Registry

__all__ = ["time_mean", "rate_cross_entropy", "predict", "softmax_sum", "softmax_sum_cross_entropy",
           "predict_softmax_sum", "LOSSES", "LossFn", "get_loss"]

#: ``loss(logits, target) -> scalar tensor``, the mean over the batch.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    Computed in float32 for half-precision logits, so a bf16 autocast forward does not degrade the loss (float64
    stays float64).

    ``target``: class indices ``[B]`` (an integer tensor). Its shape and dtype are checked here (no host read), so a
    float or one-hot target gets a message naming it rather than an error from inside ``cross_entropy``.
    """
    logits = time_mean(out)
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.is_complex() \
            or target.dtype == torch.bool:
        what = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(f"rate-ce: target must be an integer tensor of class indices [B], got {what}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"rate-ce: target must have shape [B] = [{logits.shape[0]}] (class indices), got "
                         f"{list(target.shape)}; logits are {list(out.shape)}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits, target)


def predict(out: torch.Tensor) -> torch.Tensor:
    """Class index per sample: argmax of the time-averaged logits."""
    return time_mean(out).argmax(-1)


def _check_target(name: str, target: torch.Tensor, batch: int, out: torch.Tensor) -> None:
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.is_complex() \
            or target.dtype == torch.bool:
        what = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(f"{name}: target must be an integer tensor of class indices [B], got {what}")
    if target.shape != (batch,):
        raise ValueError(f"{name}: target must have shape [B] = [{batch}] (class indices), got "
                         f"{list(target.shape)}; outputs are {list(out.shape)}")


def softmax_sum_cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``CE(m, y)`` with ``m = sum_t softmax(v_t)`` taken as the logits (mean over the batch).

    The loss of Hammouamri et al. (ICLR 2024; their ``loss='sum'``: ``CrossEntropyLoss`` applied to the summed
    per-step softmax), so ``log_softmax`` is applied to ``m`` once more. ``out``: the readout membrane
    ``[T, B, K]``; ``target``: class indices ``[B]``.
    """
    m = softmax_sum(out)
    _check_target("softmax-sum-ce", target, m.shape[0], out)
    return F.cross_entropy(m, target)


def predict_softmax_sum(out: torch.Tensor) -> torch.Tensor:
    """Class index per sample consistent with :func:`softmax_sum_cross_entropy`: ``argmax_k sum_t softmax(v_t)_k``."""
    return softmax_sum(out).argmax(-1)


#: Loss name -> factory of the loss function.
LOSSES: Registry[Callable[[], LossFn]] = Registry("loss")


@LOSSES.register("rate-ce")
def _rate_ce() -> LossFn:
    return rate_cross_entropy


@LOSSES.register("softmax-sum-ce")
def _softmax_sum_ce() -> LossFn:
    return softmax_sum_cross_entropy


def get_loss(loss: str | LossFn) -> LossFn:
    """The loss function registered as ``loss``, or ``loss`` itself if it is callable.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        TypeError: neither a name nor a callable.
    """
    if isinstance(loss, str):
        return LOSSES.build(loss)
    if not callable(loss):
        raise TypeError(f"loss must be a registered name or a callable (logits, target) -> scalar, got {loss!r}")
    return loss
