"""Per-batch training methods: how one batch turns into one optimiser step.

The loop (:mod:`snnkit.training.loop`) owns everything around a batch (data, devices, resets, schedulers, metrics,
checkpoints); a method owns only the forward/backward/step in between. BPTT is one forward over all T steps and one
backward through time. Methods that trade the temporal graph for memory (SLTT, SLTT-K: per-step backward, one
optimiser step per batch) plug in as further :class:`TrainingMethod` subclasses registered in :data:`METHODS`,
without touching the loop::

    @METHODS.register("my-method")
    class MyMethod(TrainingMethod):
        def __init__(self, some_option: int = 1): ...
        def train_step(self, model, x, y, ctx):
            ctx.zero_grad()
            ...  # forward(s), ctx.loss_fn(logits, y), backward(s)
            ctx.step(model)  # gradient clipping, then every optimiser steps
            return StepOutput(loss.detach(), logits.detach())

    fit(model, data, method="my-method", method_args={"some_option": 2})
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnkit.registry import Registry

__all__ = ["StepContext", "StepOutput", "TrainingMethod", "BPTT", "METHODS", "get_method"]


@dataclass
class StepContext:
    """What a method needs from the loop for one batch.

    Attributes:
        optimizers: every optimiser of the run (one or more, each over its own parameters).
        loss_fn: ``loss_fn(logits, target) -> scalar``; logits as the model returns them.
        autocast: zero-argument factory of the autocast context for forward passes (a no-op without ``amp``).
        grad_clip: clip the global gradient norm over all parameters to this value before the step; ``None``
            disables.
        reset: clears all neuron state of the model (``snnkit.reset``); per-step methods call it between samples.
    """

    optimizers: Sequence[torch.optim.Optimizer] = field(default_factory=list)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lambda out, y: out
    autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    grad_clip: float | None = None
    reset: Callable[[], None] = lambda: None

    def zero_grad(self) -> None:
        """Clear the gradients of every optimiser's parameters (set to None)."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def step(self, model: nn.Module) -> None:
        """Clip the global gradient norm of ``model``'s parameters (when ``grad_clip`` is set), then step every
        optimiser."""
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        for opt in self.optimizers:
            opt.step()


@dataclass
class StepOutput:
    """Result of one batch: the loss (detached scalar) and logits ``[B, K]`` or ``[T, B, K]`` (detached)."""

    loss: torch.Tensor
    logits: torch.Tensor


class TrainingMethod(abc.ABC):
    """Base class: subclasses implement :meth:`train_step` for one batch ``x [T, B, ...]``, target ``y``."""

    name: str = ""

    @abc.abstractmethod
    def train_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        """Forward, loss, backward and optimiser step(s) for one batch."""

    def check_model(self, model: nn.Module) -> None:
        """Raise ValueError if this method cannot train ``model`` (called once, before anything is written)."""


#: The table of training methods: ``METHODS.build(name, **method_args) -> TrainingMethod``.
METHODS: Registry[Callable[..., TrainingMethod]] = Registry("training method")


@METHODS.register("bptt")
class BPTT(TrainingMethod):
    """Backpropagation through time: forward the whole sequence, one loss, one backward, one step."""

    name = "bptt"

    def train_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        ctx.zero_grad()
        with ctx.autocast():
            out = model(x)
        loss = ctx.loss_fn(out, y)
        loss.backward()
        ctx.step(model)
        return StepOutput(loss=loss.detach(), logits=out.detach())


def get_method(method: str | TrainingMethod, method_args: Mapping[str, Any] | None = None) -> TrainingMethod:
    """The method registered as ``method`` built with ``method_args``, or ``method`` itself if it is an instance.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or ``method_args`` given with an instance.
        TypeError: ``method`` is neither a name nor a :class:`TrainingMethod`; ``method_args`` not accepted by it.
    """
    args = dict(method_args or {})
    if isinstance(method, TrainingMethod):
        if args:
            raise ValueError("method_args apply to a method given by name, not to a TrainingMethod instance")
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a registered name or a TrainingMethod, got {type(method).__name__}")
    factory = METHODS.get(method)
    try:
        return factory(**args)
    except TypeError as e:
        raise TypeError(f"method_args {sorted(args)} do not fit training method {method!r}: {e}") from None
