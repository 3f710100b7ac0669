"""Per-batch training methods: how one batch turns into one optimiser step.

The loop (:mod:`snnkit.training.loop`) owns everything around a batch (data, devices, resets, scheduler, metrics,
checkpoints); a method owns only the forward/backward/step in between. BPTT is one forward over all T steps and one
backward through time. Methods that trade the temporal graph for memory (SLTT, SLTT-K: per-step backward, one
optimiser step per batch) plug in as further :class:`TrainingMethod` subclasses registered in :data:`METHODS`,
without touching the loop.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["StepContext", "StepOutput", "TrainingMethod", "BPTT", "METHODS", "get_method"]


@dataclass
class StepContext:
    """What a method needs from the loop for one batch.

    Attributes:
        optimizer: the optimiser (the method calls ``zero_grad`` and ``step``).
        loss_fn: ``loss_fn(logits, target) -> scalar``; logits as the model returns them.
        autocast: zero-argument factory of the autocast context for forward passes (a no-op without ``--amp``).
        grad_clip: clip the global gradient norm to this value before the step; ``None`` disables.
        reset: clears all neuron state of the model (``snnkit.reset``); per-step methods call it between samples.
    """

    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    grad_clip: float | None = None
    reset: Callable[[], None] = lambda: None


@dataclass
class StepOutput:
    """Result of one batch: the loss (detached scalar) and logits ``[B, K]`` or ``[T, B, K]`` (detached)."""

    loss: torch.Tensor
    logits: torch.Tensor


class TrainingMethod(abc.ABC):
    """Base class: subclasses implement :meth:`train_step` for one batch ``x [T, B, ...]``, ``y [B]``."""

    name: str = ""

    @abc.abstractmethod
    def train_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        """Forward, loss, backward and optimiser step for one batch."""

    @staticmethod
    def clip_and_step(model: nn.Module, ctx: StepContext) -> None:
        """Optional gradient-norm clipping, then the optimiser step."""
        if ctx.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        ctx.optimizer.step()


class BPTT(TrainingMethod):
    """Backpropagation through time: forward the whole sequence, one loss, one backward, one step."""

    name = "bptt"

    def train_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        ctx.optimizer.zero_grad(set_to_none=True)
        with ctx.autocast():
            out = model(x)
        loss = ctx.loss_fn(out, y)
        loss.backward()
        self.clip_and_step(model, ctx)
        return StepOutput(loss=loss.detach(), logits=out.detach())


#: Method name -> class. Extend by adding an entry (a later issue adds "sltt" and "sltt-k").
METHODS: dict[str, type[TrainingMethod]] = {"bptt": BPTT}


def get_method(name: str, **kwargs: Any) -> TrainingMethod:
    """Instantiate the method registered as ``name``; unknown names list the valid ones."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; valid: {', '.join(sorted(METHODS))}")
    return METHODS[name](**kwargs)
