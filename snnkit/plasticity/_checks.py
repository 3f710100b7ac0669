"""Argument checks shared by the plasticity rules (spike trains, amplitudes, string options)."""

from __future__ import annotations

from collections.abc import Collection

import torch

from ..validation import SPIKE_DTYPES, check_real, check_spikes  # noqa: F401  (re-exported for the rules)

__all__ = ["check_amplitude", "check_option", "check_spikes", "check_time_constant"]

def check_option(name: str, value, choices: Collection[str]) -> str:
    """``value`` is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_time_constant(name: str, value) -> float:
    """A time constant: a finite real number > 0."""
    v = check_real(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def check_amplitude(name: str, value, time_steps: int, batch_shape: tuple[int, ...]):
    """An STDP amplitude: a real number, or a floating tensor holding one value per step ``[T]``, or one per step and
    sample ``[T, *batch]`` (dims of size 1 broadcast; dims are aligned from the time axis, so a 1-D tensor is
    per step). Returns the float, or the tensor broadcast to ``[T, *batch]``."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} as a tensor must be floating point, got {value.dtype}")
        if value.dim() == 0:
            return value
        full = (time_steps, *batch_shape)
        if value.dim() > len(full):
            raise ValueError(f"{name} must have shape [T] or [T, *batch] = {list(full)}, got {list(value.shape)}")
        padded = value.reshape(*value.shape, *([1] * (len(full) - value.dim())))
        try:
            return padded.expand(full)
        except RuntimeError:
            raise ValueError(
                f"{name} must have shape [T] or [T, *batch] = {list(full)} (size-1 dims broadcast), "
                f"got {list(value.shape)}"
            ) from None
    return check_real(name, value)
