"""Non-spiking leaky-integrator readout: the output layer's membrane potential is the logit at every step."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeakyIntegrator"]


class LeakyIntegrator(nn.Module):
    """Membrane of a LIF neuron that never fires: ``v_t = v_{t-1} + (x_t - v_{t-1}) / tau``, ``v_{-1} = 0``.

    Used as a classifier readout (Hammouamri et al. ICLR 2024 read out a non-spiking LIF membrane): the output is
    the membrane trace ``[T, B, C]``, which smooths the spiky input current over time. It has no state across
    calls, so it never needs a reset; every call integrates the given sequence from rest.

    Args:
        tau: membrane time constant in steps, > 1 (``tau = 1`` would copy the input, no integration).
    """

    def __init__(self, tau: float = 2.0) -> None:
        super().__init__()
        if not tau > 1.0:
            raise ValueError(f"LeakyIntegrator: tau must be > 1, got {tau}")
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"LeakyIntegrator expects [T, B, ...]; got shape {tuple(x.shape)}")
        decay = 1.0 - 1.0 / self.tau
        v = torch.zeros_like(x[0])
        out = []
        # A Python loop over T: the readout is [B, classes] wide, so this costs little next to the hidden layers,
        # and autograd through it is exact (no custom op needed for a linear recurrence).
        for t in range(x.shape[0]):
            v = decay * v + x[t] / self.tau
            out.append(v)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
