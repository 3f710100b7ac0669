"""Non-spiking leaky-integrator readout: the output layer's membrane potential is the logit at every step."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import lif_multistep
from ..validation import check_tau

__all__ = ["LeakyIntegrator"]


class LeakyIntegrator(nn.Module):
    """Membrane of a LIF neuron that never fires: ``v_t = v_{t-1} + (x_t - v_{t-1}) / tau``, ``v_{-1} = 0``.

    Used as a classifier readout (Hammouamri et al. ICLR 2024 read out a non-spiking LIF membrane): the output is
    the membrane trace ``[T, B, C]``, which smooths the spiky input current over time. It is the non-spiking mode of
    :func:`snnkit.ops.lif_multistep` (``v_threshold=None``): one fused scan, the same charge equation as every LIF.
    It has no state across calls, so it never needs a reset; every call integrates the given sequence from rest.

    Args:
        tau: membrane time constant in steps, > 1 (``tau = 1`` would copy the input, no integration).
    """

    def __init__(self, tau: float = 2.0) -> None:
        super().__init__()
        self.tau = check_tau("LeakyIntegrator: tau", tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"LeakyIntegrator expects [T, B, ...]; got shape {shape}")
        v_seq, _ = lif_multistep(x, tau=self.tau, v_threshold=None, v_reset=0.0, decay_input=True)
        return v_seq

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
