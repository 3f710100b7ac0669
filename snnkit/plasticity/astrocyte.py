"""The NALSM astrocyte: a slow unit that sets the STDP depression amplitude from the liquid's and input's activity.

Ivanov & Michmizos (2021), "Increasing Liquid State Machine Performance with Edge-of-Chaos Dynamics Organized by
Astrocyte-modulated Plasticity", NeurIPS 2021. One astrocyte per liquid (per sample in a batch) integrates, every
step of ``dt = 1 ms``, the liquid's spikes minus the input's spikes::

    A_astro <- A_astro + ( w_astro * (sum_i s_liquid_i - sum_j s_input_j) + b_astro - A_astro ) / tau_astro

and ``A_astro`` is the depression amplitude of the liquid's STDP (``a_minus`` of
:func:`snnkit.plasticity.sparse_stdp_step` / :func:`snnkit.plasticity.stdp_delta`). A liquid that fires more than it
is driven raises the depression, which weakens excitation (and strengthens inhibition through the mirrored rule);
one that fires less lowers it. This negative feedback drives the liquid towards a branching factor of 1.

Constants (paper / reference code combra-lab/NALSM): ``tau_astro = 100`` steps, ``w_astro = 0.015`` for 1000
liquid neurons and ``0.0075`` for 8000, ``A_astro`` and ``b_astro`` start at the potentiation amplitude
``A+ = 0.15``. During a sample's presentation ``A_astro``, ``w_astro`` and ``b_astro`` decay by ``decay = 0.99`` per
step (so does ``A+``: plasticity fades within a presentation); during the initialisation phase ``decay = 1``. Every
sample starts from the initial values (:meth:`Astrocyte.reset`).
"""

from __future__ import annotations

import torch

from ..validation import check_real
from ._checks import check_time_constant

__all__ = ["Astrocyte", "astrocyte_step"]


def astrocyte_step(a: torch.Tensor, liquid_spikes: torch.Tensor, input_spikes: torch.Tensor, *, w: float,
                   bias: float, tau: float) -> torch.Tensor:
    """One step of the astrocyte equation (module doc) for a batch: ``a [B]``, spikes ``[B, N]`` and ``[B, n_in]``."""
    drive = liquid_spikes.sum(-1, dtype=a.dtype) - input_spikes.sum(-1, dtype=a.dtype)
    return a + (w * drive + bias - a) / tau


class Astrocyte:
    """Per-sample astrocyte state (module doc). ``reset(batch)`` before a sample, ``step(...)`` once per time step,
    ``decay_step()`` after it while plasticity fades; ``a`` is the current depression amplitude ``[B]``.

    Args:
        w: coupling ``w_astro`` (default 0.015: the paper's value for 1000 liquid neurons; 0.0075 for 8000).
        bias: ``b_astro`` (default 0.15 = the paper's ``A+``: the astrocyte rests at the potentiation amplitude).
        initial: ``A_astro`` at the start of a sample (default 0.15).
        tau: ``tau_astro`` in steps (default 100).
        decay: factor on ``A_astro``, ``w`` and ``bias`` per :meth:`decay_step` (default 0.99).
    """

    def __init__(self, w: float = 0.015, bias: float = 0.15, initial: float = 0.15, tau: float = 100.0,
                 decay: float = 0.99) -> None:
        self.w0 = check_real("w", w)
        self.bias0 = check_real("bias", bias)
        self.initial = check_real("initial", initial)
        self.tau = check_time_constant("tau", tau)
        self.decay = check_real("decay", decay)
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {self.decay}")
        self.a: torch.Tensor | None = None
        self.w = self.w0
        self.bias = self.bias0

    def __repr__(self) -> str:
        return (f"Astrocyte(w={self.w0}, bias={self.bias0}, initial={self.initial}, tau={self.tau}, "
                f"decay={self.decay})")

    def reset(self, batch: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
        """Start a sample: ``A_astro``, ``w`` and ``bias`` back to their initial values; returns ``a [batch]``."""
        self.a = torch.full((batch,), self.initial, device=device, dtype=dtype)
        self.w, self.bias = self.w0, self.bias0
        return self.a

    def step(self, liquid_spikes: torch.Tensor, input_spikes: torch.Tensor) -> torch.Tensor:
        """Integrate one step of liquid ``[B, N]`` and input ``[B, n_in]`` spikes; returns the new ``a [B]``."""
        if self.a is None or self.a.shape[0] != liquid_spikes.shape[0]:
            raise RuntimeError("call reset(batch) before step(): the astrocyte state does not fit this batch")
        self.a = astrocyte_step(self.a, liquid_spikes, input_spikes, w=self.w, bias=self.bias, tau=self.tau)
        return self.a

    def decay_step(self) -> None:
        """Let ``A_astro``, ``w`` and ``bias`` fade by ``decay`` (during a sample's presentation)."""
        if self.decay != 1.0:
            self.a = self.a * self.decay
            self.w *= self.decay
            self.bias *= self.decay
