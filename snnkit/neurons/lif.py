"""LIF and ParametricLIF modules: parameters and state around the ``snnkit.ops.lif_multistep`` op."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..ops.lif import lif_multistep, state_dtype
from ..surrogate import Sigmoid, Surrogate
from ..validation import check_bool, check_real, check_tau
from .base import StatefulNeuron

__all__ = ["LIF", "ParametricLIF"]


class LIF(StatefulNeuron):
    """Leaky integrate-and-fire neuron (SpikingJelly's ``LIFNode``; Gerstner et al. "Neuronal Dynamics" ch. 1).

    ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau`` (``decay_input``) or ``v_{t-1} - (v_{t-1} - v_reset) / tau
    + x_t``; ``s_t = H(h_t - v_threshold)``; hard reset to ``v_reset``, or soft reset ``v_t = h_t - v_threshold``
    when ``v_reset is None``. The math is :func:`snnkit.ops.lif_multistep`; this module only holds parameters and
    state. Multi-step mode (the default) runs ``[T, B, ...]`` in one fused op; single-step mode runs that op with T = 1.

    Args:
        tau: membrane time constant in steps (> 1). Default 2.0 (SpikingJelly).
        surrogate: surrogate gradient; default ``Sigmoid(alpha=4.0)`` (SpikingJelly).
        step_mode: "m" (input ``[T, ...]``) or "s" (input ``[...]``, state kept between calls).
        carry_state: in "m" mode, start each call from the state the previous call left (streaming) instead of rest.
        store_v_seq: in "m" mode keep the potential of every step in ``self.v_seq``.
        backend, storage, check: as in :func:`snnkit.ops.lif_multistep`.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: Optional[float] = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: Surrogate = Sigmoid(alpha=4.0),
        step_mode: str = "m",
        carry_state: bool = False,
        store_v_seq: bool = False,
        backend: str = "auto",
        storage: str = "exact",
        check: str = "auto",
    ) -> None:
        super().__init__(step_mode=step_mode, carry_state=carry_state)
        check_tau("tau", tau)  # the op checks every call too: a learnable tau may move
        self._tau = tau
        self.v_threshold = check_real("v_threshold", v_threshold)
        self.v_reset = check_real("v_reset", v_reset, allow_none=True)
        self.decay_input = check_bool("decay_input", decay_input)
        self.detach_reset = check_bool("detach_reset", detach_reset)
        if not isinstance(surrogate, Surrogate):
            raise TypeError(f"surrogate must be a snnkit.surrogate.Surrogate, got {type(surrogate).__name__}")
        self.surrogate = surrogate
        self.store_v_seq = check_bool("store_v_seq", store_v_seq)
        self.backend = backend
        self.storage = storage
        self.check = check
        self.v_seq: Optional[torch.Tensor] = None

    @property
    def tau(self) -> float | torch.Tensor:
        return self._tau

    def _op(self, x: torch.Tensor, v0: Optional[torch.Tensor], store_v_seq: bool):
        return lif_multistep(
            x, v0, tau=self.tau, v_threshold=self.v_threshold, v_reset=self.v_reset, decay_input=self.decay_input,
            detach_reset=self.detach_reset, surrogate=self.surrogate, store_v_seq=store_v_seq, backend=self.backend,
            storage=self.storage, check=self.check,
        )

    def _rest(self, like: torch.Tensor) -> torch.Tensor:
        # The state is kept in the state dtype (float32 for half inputs), so bf16 steps do not round it every step.
        return torch.full(like.shape, 0.0 if self.v_reset is None else self.v_reset, dtype=state_dtype(like.dtype),
                          device=like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if self.step_mode == "s":
            if x.dim() < 1:
                raise ValueError("in step_mode 's' x is one time step [B, ...], got a 0-dim tensor")
            v0 = self._usable_state(x)
            spikes, v = self._op(x.unsqueeze(0), self._rest(x) if v0 is None else v0, False)
            self._store_state(v)
            return spikes[0]
        if x.dim() < 2:
            raise ValueError(f"in step_mode 'm' x must be time-first [T, B, ...], got shape {tuple(x.shape)}; use "
                             "step_mode='s' for one step")
        v0 = self._usable_state(x[0]) if self.carry_state else None
        if self.carry_state and v0 is None:
            v0 = self._rest(x[0])
        if self.store_v_seq:
            spikes, v_seq = self._op(x, v0, True)
            self.v_seq = v_seq
            self._store_state(v_seq[-1].to(state_dtype(x.dtype)))  # v_seq is in x.dtype without a carried v0
        else:
            spikes, v = self._op(x, v0, False)
            self._store_state(v.to(state_dtype(x.dtype)))
        return spikes

    def extra_repr(self) -> str:
        tau = self.tau.item() if isinstance(self.tau, torch.Tensor) else self.tau
        return (f"tau={tau:.4g}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
                f"decay_input={self.decay_input}, detach_reset={self.detach_reset}, surrogate={self.surrogate}, "
                f"{super().extra_repr()}, backend={self.backend!r}, storage={self.storage!r}")


class ParametricLIF(LIF):
    """LIF with a learnable membrane time constant (PLIF; Fang et al., ICCV 2021).

    ``1 / tau = sigmoid(w)`` with a learnable scalar ``w`` initialised to ``-log(init_tau - 1)``, which keeps
    ``tau > 1`` throughout training. The gradient dL/dtau is computed inside the op's backward scan
    (``sum_t dL/dh_t dh_t/dtau``), not by autograd through T steps.
    """

    def __init__(self, init_tau: float = 2.0, **kwargs) -> None:
        t = check_tau("init_tau", init_tau)
        if "tau" in kwargs:
            raise TypeError("ParametricLIF learns tau: pass init_tau, not tau")
        super().__init__(tau=t, **kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(t - 1.0)))

    @property
    def tau(self) -> torch.Tensor:
        return 1.0 / torch.sigmoid(self.w)
