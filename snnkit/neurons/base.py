"""Stateful neuron modules: the state conventions shared by every neuron, and ``snnkit.reset``.

Forgetting a reset must not bite (the most common complaint in SpikingJelly and snnTorch issues): a state whose batch
shape, device or dtype no longer fits the input is never reused; the neuron starts from rest instead and warns once,
naming ``snnkit.reset``. The state is always held in the state dtype of the input (float32 for float16, bfloat16
and float32 inputs, float64 for float64), so low-precision inputs never round the carried potential.

A state whose autograd graph a backward pass has consumed depends on what the caller asked for:

- ``carry_state=True`` (streaming, truncated BPTT: one backward per chunk of a long recording, and SLTT's per-step
  backward): the neuron continues from the carried state, detached. Chunked forward passes then fire exactly as
  one pass over the whole sequence; gradients stop at chunk boundaries, which is what truncated BPTT means.
- otherwise (``step_mode="s"`` without ``carry_state``): a consumed graph means a new batch began without
  ``snnkit.reset``, so the neuron starts from rest and warns once.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import nn

from ..ops.lif import state_dtype

__all__ = ["StatefulNeuron", "reset", "STEP_MODES"]

STEP_MODES = ("s", "m")


class StatefulNeuron(nn.Module):
    """Base of neurons holding a membrane potential ``v`` between calls.

    ``step_mode="m"``: ``forward(x [T, ...])`` runs the whole sequence in one fused op and, unless ``carry_state``
    is set (streaming), starts from rest. ``step_mode="s"``: ``forward(x [...])`` advances one step and keeps ``v``.
    With ``carry_state`` a state whose graph was consumed by a backward continues detached (see the module
    docstring). With ``detach_state`` (set by :func:`snnkit.neurons.online` for SLTT) every call starts from the
    carried state detached: no gradient flows from one call into the previous one.

    ``spiking`` is False for stateful modules that emit a potential rather than spikes (the leaky-integrator
    readout); spike counts and raster plots skip them.
    """

    spiking: bool = True

    def __init__(self, step_mode: str = "m", carry_state: bool = False) -> None:
        super().__init__()
        if step_mode not in STEP_MODES:
            raise ValueError(f"step_mode must be 's' (single step) or 'm' (multi step), got {step_mode!r}")
        self.step_mode = step_mode
        self.carry_state = bool(carry_state)
        self.detach_state = False
        self.v: Optional[torch.Tensor] = None
        self._graph_consumed = False
        self._warned = False

    def reset_state(self) -> None:
        """Back to rest: the next call starts from the resting potential."""
        self.v = None
        self._graph_consumed = False

    def _mark_consumed(self, grad: torch.Tensor) -> torch.Tensor:
        self._graph_consumed = True
        return grad

    def _usable_state(self, like: torch.Tensor) -> Optional[torch.Tensor]:
        """The stored state if it may seed a step whose per-step input looks like ``like``, else None."""
        v = self.v
        if v is None:
            return None
        why = None
        if v.shape != like.shape:
            why = f"its shape {tuple(v.shape)} does not match the input's {tuple(like.shape)}"
        elif v.device != like.device:
            why = f"it is on {v.device} but the input is on {like.device}"
        elif v.dtype != state_dtype(like.dtype):
            why = f"its dtype {v.dtype} is not the state dtype {state_dtype(like.dtype)} of a {like.dtype} input"
        elif self.detach_state:
            return v.detach()
        elif v.requires_grad and self._graph_consumed:
            if self.carry_state:  # truncated BPTT: continue from the state, without its spent graph
                return v.detach()
            why = "a backward pass has already consumed its graph"
        if why is None:
            return v
        if not self._warned:
            warnings.warn(
                f"{type(self).__name__}: starting from rest because the stored state cannot be reused ({why}); call "
                "snnkit.reset(model) between independent sequences",
                stacklevel=4,
            )
            self._warned = True
        self.reset_state()
        return None

    def _store_state(self, v: torch.Tensor) -> None:
        self._graph_consumed = False
        if v.requires_grad:
            v.register_hook(self._mark_consumed)
        self.v = v

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}" + (", carry_state=True" if self.carry_state else "")


def reset(model: nn.Module) -> nn.Module:
    """Clear the state of every snnkit neuron in ``model`` (call between independent sequences); returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"snnkit.reset expects an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, StatefulNeuron):
            m.reset_state()
    return model
