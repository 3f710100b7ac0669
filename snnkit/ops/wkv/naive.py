"""The readable WKV oracle: the stable recurrence written step by step, autograd deriving the backward.

Slow and memory-hungry (about twenty autograd nodes per step), and that is the point: nothing here is
hand-derived, so the tests compare the CPU path (``cpu.py``) and the Triton kernels against it. The state after
token t is ``(p, q, o)`` with ``a_t = p e^o`` the decayed sum of ``e^{k_i} v_i`` and ``b_t = q e^o`` that of
``e^{k_i}``; ``o`` is a running maximum exponent that keeps every ``exp`` argument <= 0::

    output   m = max(o, u + k_t);  y_t = (e^{o-m} p + e^{u+k_t-m} v_t) / (e^{o-m} q + e^{u+k_t-m})
    update   n = max(w + o, k_t);  p <- e^{w+o-n} p + e^{k_t-n} v_t;  q <- e^{w+o-n} q + e^{k_t-n};  o <- n

The maxima are detached: ``y`` does not depend on the choice of ``o`` (numerator and denominator scale alike), so
holding the shift constant changes no gradient of ``y``, and it is the convention of the op for the returned
state (gradients with respect to ``p`` and ``q`` at fixed ``o``; ``o`` itself gets none).
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["wkv_naive", "O_INIT"]

#: The max exponent of an empty state: far below any real exponent, yet finite so that ``o - m`` never is ``nan``.
O_INIT = -1e38


def wkv_naive(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              state: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y [T, B, C] in v.dtype, state [3, B, C])`` for ``w, u [C]``, ``k, v [T, B, C]``; see the module docstring.

    Computes in float64 when any input is float64, else float32; no input checks (the public op does them).
    """
    acc = torch.float64 if torch.float64 in (w.dtype, u.dtype, k.dtype, v.dtype) else torch.float32
    y_dtype = v.dtype
    w, u, k, v = (t.to(acc) for t in (w, u, k, v))
    if state is None:
        p = torch.zeros_like(k[0])
        q = torch.zeros_like(k[0])
        o = torch.full_like(k[0], O_INIT)
    else:
        p, q, o = state.to(acc).unbind(0)
        o = o.detach()
    ys = []
    for k_t, v_t in zip(k, v):
        uk = u + k_t
        m = torch.maximum(o, uk).detach()
        a, b = torch.exp(o - m), torch.exp(uk - m)
        ys.append((a * p + b * v_t) / (a * q + b))
        wo = w + o
        n = torch.maximum(wo, k_t).detach()
        a, b = torch.exp(wo - n), torch.exp(k_t - n)
        p = a * p + b * v_t
        q = a * q + b
        o = n
    return torch.stack(ys).to(y_dtype), torch.stack([p, q, o])
