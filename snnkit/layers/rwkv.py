"""Spiking RWKV layers of SpikeGPT (Zhu, Zhao, Li, Eshraghian 2023, "SpikeGPT: Generative Pre-trained Language Model
with Spiking Neural Networks"): the token axis of a language model is the spiking network's time axis.

Every layer is time-first, ``x [T, B, C]`` with ``T`` the token axis, and runs in two modes that compute the same
numbers:

- parallel (training) mode: ``layer(x)`` over a whole window of tokens; each LIF is one call of the LIF op
  (:func:`snnkit.ops.lif_multistep`) over all ``T`` tokens and the WKV recurrence one call of :func:`snnkit.ops.wkv`;
- RNN (streaming) mode: ``layer(x, state)`` with ``T = 1`` (or any chunk) and the state the previous call returned;
  the same ops run with the carried state, so token-by-token calls equal one call over the whole sequence.

The per-layer state (:class:`RWKVState`) is the last input of each token shift, the WKV state
``[3, B, C]`` (numerator, denominator, max exponent) and the two LIF membrane potentials.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn

from ..neurons import LIF
from ..ops.wkv import wkv
from ..surrogate import ATan
from ..validation import check_positive_int, check_real, check_tensor

__all__ = ["SpikingTimeMix", "SpikingChannelMix", "SpikingRWKVBlock", "RWKVState", "TokenLIF", "token_shift",
           "rwkv_mix_init"]


class RWKVState(NamedTuple):
    """The RNN state of one :class:`SpikingRWKVBlock` after the last token seen (every tensor ``[B, C]`` unless noted).

    Attributes:
        att_shift: the time mix's last input (its token shift at the next token).
        wkv: float32 ``[3, B, C]``: WKV numerator, denominator and max exponent (see :func:`snnkit.ops.wkv`).
        ffn_shift: the channel mix's last input.
        v_att, v_ffn: membrane potentials of the LIF after the time mix and after the channel mix.
    """

    att_shift: torch.Tensor
    wkv: torch.Tensor
    ffn_shift: torch.Tensor
    v_att: torch.Tensor
    v_ffn: torch.Tensor


def token_shift(x: torch.Tensor, last: Optional[torch.Tensor]) -> torch.Tensor:
    """``x`` delayed by one token along the time axis: ``xx_0 = last`` (zeros when None), ``xx_t = x_{t-1}``."""
    first = torch.zeros_like(x[:1]) if last is None else last.unsqueeze(0).to(x.dtype)
    return torch.cat([first, x[:-1]], dim=0)


def rwkv_mix_init(n_embd: int, exponent: float) -> torch.Tensor:
    """The token-mix ramp of the RWKV initialisation: ``(i / C) ** exponent`` for channel ``i`` of ``C``."""
    return (torch.arange(n_embd, dtype=torch.float64) / n_embd).pow(exponent).float()


def _ratios(layer_id: int, n_layer: int) -> tuple[float, float]:
    """SpikeGPT's depth ratios ``r0 = l / (L - 1)`` (0 to 1; 0 for one layer) and ``r1 = 1 - l / L`` (1 to ~0)."""
    r0 = layer_id / (n_layer - 1) if n_layer > 1 else 0.0
    return r0, 1.0 - layer_id / n_layer


def _check_layer(n_embd: int, layer_id: int, n_layer: int) -> None:
    check_positive_int("n_embd", n_embd)
    check_positive_int("n_layer", n_layer)
    if isinstance(layer_id, bool) or not isinstance(layer_id, int) or not 0 <= layer_id < n_layer:
        raise ValueError(f"layer_id must be an integer in [0, n_layer) = [0, {n_layer}), got {layer_id!r}")


def _check_input(x: torch.Tensor, n_embd: int) -> None:
    check_tensor("x", x)
    if x.dim() != 3 or x.shape[-1] != n_embd:
        raise ValueError(f"x must be time-first [T, B, C] with C = n_embd = {n_embd}, got shape {tuple(x.shape)}")
    check_tensor("x", x, time_first=True)


class TokenLIF(LIF):
    """SpikeGPT's LIF over the token axis, with the membrane potential passed explicitly.

    ``forward(x [T, B, C], v0=None) -> (spikes [T, B, C], v_last [B, C])``: one call of
    :func:`snnkit.ops.lif_multistep` (the LIF module's op; no neuron math here), starting from ``v0`` or from rest.
    The state lives in the caller's :class:`RWKVState` rather than in the module, so a model streams several
    sequences without resets. Being an :class:`snnkit.neurons.LIF`, the training loop's spike counter sees it.
    Defaults are the paper's: tau 2, threshold 1, hard reset to 0, ``decay_input``, ATan(alpha=2).
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 surrogate: ATan = ATan(alpha=2.0), **kwargs) -> None:
        super().__init__(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=True, surrogate=surrogate,
                         **kwargs)

    def forward(self, x: torch.Tensor, v0: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        if v0 is None and x.dtype in (torch.float16, torch.bfloat16):
            # start from a float32 rest, so the returned (and streamed) potential is float32, not rounded to bf16
            v0 = self._rest(x[0])
        return self._op(x, v0, False)


class SpikingTimeMix(nn.Module):
    """RWKV-4 time mixing, SpikeGPT's "spiking RWKV" token mixer (Zhu et al. 2023, eqs. of the RWKV block).

    With the token shift ``xx_t = x_{t-1}``: ``xk = x mix_k + xx (1 - mix_k)`` (the same for ``v`` and ``r``),
    ``k = W_k xk``, ``v = W_v xv``, ``r = W_r xr``, and ``out = W_o (sigmoid(r) * WKV(w, u, k, v))`` with
    ``w = -exp(time_decay)``, ``u = time_first`` and::

        WKV_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{(t-1-i) w + k_i} + e^{u + k_t})

    computed by :func:`snnkit.ops.wkv`. Initialisation: the paper's (see :meth:`reset_parameters`).

    ``forward(x [T, B, C], state=None) -> (out [T, B, C], (last_x [B, C], wkv_state [3, B, C]))``.
    """

    def __init__(self, n_embd: int, layer_id: int = 0, n_layer: int = 1, wkv_backend: str = "auto") -> None:
        super().__init__()
        _check_layer(n_embd, layer_id, n_layer)
        self.n_embd, self.layer_id, self.n_layer = n_embd, layer_id, n_layer
        self.wkv_backend = wkv_backend
        self.time_decay = nn.Parameter(torch.empty(n_embd))
        self.time_first = nn.Parameter(torch.empty(n_embd))
        self.mix_k = nn.Parameter(torch.empty(n_embd))
        self.mix_v = nn.Parameter(torch.empty(n_embd))
        self.mix_r = nn.Parameter(torch.empty(n_embd))
        self.key = nn.Linear(n_embd, n_embd, bias=False)
        self.value = nn.Linear(n_embd, n_embd, bias=False)
        self.receptance = nn.Linear(n_embd, n_embd, bias=False)
        self.output = nn.Linear(n_embd, n_embd, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The paper's initialisation (reference code ridgerchu/SpikeGPT), layer ``l`` of ``L``, ``r0 = l/(L-1)``,
        ``r1 = 1 - l/L``, channel ``i`` of ``C``:

        - ``time_decay_i = -5 + 8 (i / (C-1)) ** (0.7 + 1.3 r0)`` (slow to fast decay across channels);
        - ``time_first_i = ln 0.3 + 0.5 ((i + 1) % 3 - 1)`` (a zigzag around ln 0.3);
        - ``mix_k = (i/C) ** r1``, ``mix_v = (i/C) ** r1 + 0.3 r0``, ``mix_r = (i/C) ** (0.5 r1)``;
        - ``W_k``, ``W_r``, ``W_o`` zero (the block starts as the identity plus silent LIFs); ``W_v`` orthogonal.
        """
        C = self.n_embd
        r0, r1 = _ratios(self.layer_id, self.n_layer)
        h = torch.arange(C, dtype=torch.float64)
        frac = h / (C - 1) if C > 1 else torch.zeros_like(h)
        self.time_decay.copy_(-5 + 8 * frac.pow(0.7 + 1.3 * r0))
        zigzag = ((h + 1) % 3 - 1) * 0.5
        self.time_first.copy_(math.log(0.3) + zigzag)
        self.mix_k.copy_(rwkv_mix_init(C, r1))
        self.mix_v.copy_(rwkv_mix_init(C, r1) + 0.3 * r0)
        self.mix_r.copy_(rwkv_mix_init(C, 0.5 * r1))
        for lin in (self.key, self.receptance, self.output):
            nn.init.zeros_(lin.weight)
        nn.init.orthogonal_(self.value.weight, gain=1.0)

    def forward(self, x: torch.Tensor, state: Optional[tuple[torch.Tensor, torch.Tensor]] = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        _check_input(x, self.n_embd)
        last, wkv_state = (None, None) if state is None else state
        xx = token_shift(x, last)
        xk = x * self.mix_k + xx * (1 - self.mix_k)
        xv = x * self.mix_v + xx * (1 - self.mix_v)
        xr = x * self.mix_r + xx * (1 - self.mix_r)
        k, v = self.key(xk), self.value(xv)
        sr = torch.sigmoid(self.receptance(xr))
        y, wkv_state = wkv(-torch.exp(self.time_decay), self.time_first, k, v, wkv_state,
                           backend=self.wkv_backend)
        return self.output(sr * y.to(sr.dtype)), (x[-1], wkv_state)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, layer_id={self.layer_id}, n_layer={self.n_layer}"


class SpikingChannelMix(nn.Module):
    """RWKV channel mixing (SpikeGPT's spiking feed-forward network), hidden size ``4C``.

    ``xk = x mix_k + xx (1 - mix_k)``, ``xr = x mix_r + xx (1 - mix_r)`` with the token shift ``xx_t = x_{t-1}``;
    ``out = sigmoid(W_r xr) * W_v relu(W_k xk)^2``. Initialisation: ``mix_k = mix_r = (i/C) ** r1``; ``W_v`` and
    ``W_r`` zero, ``W_k`` orthogonal with gain 2 (``sqrt(4C / C)``), as in the reference code.

    ``forward(x [T, B, C], last=None) -> (out [T, B, C], last_x [B, C])``.
    """

    def __init__(self, n_embd: int, layer_id: int = 0, n_layer: int = 1, hidden_mult: int = 4) -> None:
        super().__init__()
        _check_layer(n_embd, layer_id, n_layer)
        check_positive_int("hidden_mult", hidden_mult)
        self.n_embd, self.layer_id, self.n_layer = n_embd, layer_id, n_layer
        hidden = hidden_mult * n_embd
        self.mix_k = nn.Parameter(torch.empty(n_embd))
        self.mix_r = nn.Parameter(torch.empty(n_embd))
        self.key = nn.Linear(n_embd, hidden, bias=False)
        self.receptance = nn.Linear(n_embd, n_embd, bias=False)
        self.value = nn.Linear(hidden, n_embd, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The paper's initialisation (see the class docstring)."""
        _, r1 = _ratios(self.layer_id, self.n_layer)
        self.mix_k.copy_(rwkv_mix_init(self.n_embd, r1))
        self.mix_r.copy_(rwkv_mix_init(self.n_embd, r1))
        out_f, in_f = self.key.weight.shape
        nn.init.orthogonal_(self.key.weight, gain=math.sqrt(out_f / in_f))
        nn.init.zeros_(self.receptance.weight)
        nn.init.zeros_(self.value.weight)

    def forward(self, x: torch.Tensor, last: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.n_embd)
        xx = token_shift(x, last)
        xk = x * self.mix_k + xx * (1 - self.mix_k)
        xr = x * self.mix_r + xx * (1 - self.mix_r)
        kv = self.value(torch.relu(self.key(xk)).square())
        return torch.sigmoid(self.receptance(xr)) * kv, x[-1]

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, hidden={self.key.out_features}, layer_id={self.layer_id}"


class SpikingRWKVBlock(nn.Module):
    """One SpikeGPT block (Zhu et al. 2023): spiking time mix and spiking channel mix on a residual stream.

    ``x = ln0(x)`` at layer 0; ``x = x + LIF(TimeMix(ln1(x)))``; ``x = x + LIF(ChannelMix(ln2(x)))``; then dropout.
    Each LIF (:class:`TokenLIF`: tau 2, threshold 1, hard reset to 0, ``decay_input``, ATan(2)) runs over the token
    axis, so the residual stream receives binary spikes from every sub-block.

    ``forward(x [T, B, C], state=None) -> (x [T, B, C], RWKVState)``; ``state=None`` starts every recurrence from
    rest (zeros for the shifts and potentials, the empty WKV state).
    """

    def __init__(self, n_embd: int, layer_id: int = 0, n_layer: int = 1, dropout: float = 0.0,
                 wkv_backend: str = "auto", lif_backend: str = "auto") -> None:
        super().__init__()
        _check_layer(n_embd, layer_id, n_layer)
        dropout = check_real("dropout", dropout)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_embd, self.layer_id = n_embd, layer_id
        self.ln0 = nn.LayerNorm(n_embd) if layer_id == 0 else None
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.att = SpikingTimeMix(n_embd, layer_id, n_layer, wkv_backend=wkv_backend)
        self.ffn = SpikingChannelMix(n_embd, layer_id, n_layer)
        self.lif1 = TokenLIF(backend=lif_backend)
        self.lif2 = TokenLIF(backend=lif_backend)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: Optional[RWKVState] = None) -> tuple[torch.Tensor, RWKVState]:
        _check_input(x, self.n_embd)
        if self.ln0 is not None:
            x = self.ln0(x)
        s = state
        a, (att_last, wkv_state) = self.att(self.ln1(x), None if s is None else (s.att_shift, s.wkv))
        spikes, v_att = self.lif1(a, None if s is None else s.v_att)
        x = x + spikes
        f, ffn_last = self.ffn(self.ln2(x), None if s is None else s.ffn_shift)
        spikes, v_ffn = self.lif2(f, None if s is None else s.v_ffn)
        x = self.drop(x + spikes)
        return x, RWKVState(att_last, wkv_state, ffn_last, v_att, v_ffn)
