"""Non-spiking leaky-integrator readout: the output layer's membrane potential is the logit at every step; and
:func:`softmax_sum`, how the delay SNN of Hammouamri et al. (ICLR 2024) decodes such membranes into class scores."""

from __future__ import annotations

import torch

from ..neurons.base import StatefulNeuron
from ..ops import lif_multistep
from ..ops.lif import state_dtype
from ..validation import check_tau

__all__ = ["LeakyIntegrator", "softmax_sum"]


def softmax_sum(out: torch.Tensor) -> torch.Tensor:
    """``m = sum_t softmax(v_t)`` over the classes, ``[T, B, K] -> [B, K]`` (in float32 for half inputs).

    Each step votes with a probability vector, so a step's vote is bounded whatever the membrane's scale
    (Hammouamri et al. ICLR 2024, the readout of the delay SNN; its loss is the cross-entropy of ``m`` taken as
    logits, :func:`snnkit.training.losses.softmax_sum_cross_entropy`).
    """
    if out.dim() != 3:
        raise ValueError(f"softmax-sum: expected membrane potentials [T, B, K], got shape {tuple(out.shape)}")
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    return out.softmax(-1).sum(0)


class LeakyIntegrator(StatefulNeuron):
    """Membrane of a LIF neuron that never fires: ``v_t = v_{t-1} + (x_t - v_{t-1}) / tau``, ``v_{-1} = 0``.

    Used as a classifier readout (Hammouamri et al. ICLR 2024 read out a non-spiking LIF membrane): the output is
    the membrane trace ``[T, B, C]``, which smooths the spiky input current over time. It is the non-spiking mode of
    :func:`snnkit.ops.lif_multistep` (``v_threshold=None``): one fused scan, the same charge equation as every LIF.
    By default every call integrates the given sequence from rest (no reset needed); like a neuron it can carry its
    state (``carry_state=True``, or inside :func:`snnkit.neurons.online` when a model runs one step per call).
    It emits potentials, not spikes (``spiking = False``).

    Args:
        tau: membrane time constant in steps, > 1 (``tau = 1`` would copy the input, no integration).
        carry_state: start each call from the state the previous call left (streaming).
    """

    spiking = False

    def __init__(self, tau: float = 2.0, carry_state: bool = False) -> None:
        super().__init__(step_mode="m", carry_state=carry_state)
        self.tau = check_tau("LeakyIntegrator: tau", tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"LeakyIntegrator expects [T, B, ...]; got shape {shape}")
        v0 = None
        if self.carry_state:
            v0 = self._usable_state(x[0])
            if v0 is None:
                v0 = torch.zeros(x.shape[1:], dtype=state_dtype(x.dtype), device=x.device)
        v_seq, v_last = lif_multistep(x, v0, tau=self.tau, v_threshold=None, v_reset=0.0, decay_input=True)
        self._store_state(v_last.to(state_dtype(x.dtype)))
        return v_seq

    def extra_repr(self) -> str:
        return f"tau={self.tau}" + (", carry_state=True" if self.carry_state else "")
