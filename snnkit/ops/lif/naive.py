"""The readable LIF oracle: the neuron written step by step, with autograd deriving the backward.

Slow and memory-hungry (autograd records about ten nodes per step), and that is the point: nothing here is
hand-derived, so the tests compare the fast CPU loops (``cpu.py``) and the Triton kernels against it. The
equations are those of :func:`snnkit.ops.lif_multistep`, with ``k = 1 / tau``::

    charge   h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) k        (decay_input=True)
             h_t = v_{t-1} - (v_{t-1} - v_reset) k + x_t          (decay_input=False)
    fire     s_t = H(h_t - v_threshold),  H(0) = 1
    reset    v_t = s_t v_reset + (1 - s_t) h_t                    (hard reset)
             v_t = h_t - s_t v_threshold                          (soft reset, v_reset=None; charge uses v_reset=0)
    no fire  v_t = h_t                                            (v_threshold=None: a leaky integrator)
"""

from __future__ import annotations

from typing import Optional

import torch

from ...surrogate import PDSG, Surrogate, pdsg_sigma, pdsg_spike

__all__ = ["lif_multistep_naive"]


def lif_multistep_naive(
    x: torch.Tensor,
    v0: Optional[torch.Tensor] = None,
    *,
    tau: float | torch.Tensor = 2.0,
    v_threshold: Optional[float] = 1.0,
    v_reset: Optional[float] = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Optional[Surrogate] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(spikes, v_seq)``, or ``(v_seq, v_seq)`` for a non-spiking neuron (``v_threshold=None``)."""
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], vr) if v0 is None else v0
    spikes, vs, hs = [], [], []
    for x_t in x:
        h = v + (x_t - (v - vr)) / tau if decay_input else v - (v - vr) / tau + x_t
        if v_threshold is None:
            v = h
        else:
            if surrogate is None:
                raise ValueError("a spiking neuron (v_threshold not None) needs a surrogate")
            if isinstance(surrogate, PDSG):  # widths from the potentials of every step so far (see pdsg_sigma)
                hs.append(h.detach())
                sigma = pdsg_sigma(torch.stack(hs))[-1]
                s = pdsg_spike(h - v_threshold, sigma.view([1, -1] + [1] * (h.dim() - 2)) if h.dim() >= 2 else sigma)
            else:
                s = surrogate(h - v_threshold)
            s_r = s.detach() if detach_reset else s
            v = h - s_r * v_threshold if v_reset is None else s_r * v_reset + (1 - s_r) * h
            spikes.append(s)
        vs.append(v)
    v_seq = torch.stack(vs)
    return (torch.stack(spikes) if spikes else v_seq), v_seq
