"""The WKV op's PyTorch path: the forward scan and a hand-written reverse scan, no autograd graph.

Vectorised over ``[B, C]``, one Python-level step per token, in float32 (float64 when an input is float64). The
forward is the recurrence of ``naive.py``; when a gradient is needed it saves the state *before* every token,
``(p, q, o)`` as one ``[T, 3, B, C]`` tensor (12 bytes per element and token in float32).

Backward. Write ``a_t = p_t e^{o_t}``, ``b_t = q_t e^{o_t}`` for the true (unshifted) sums after token t and
``D_t = b_{t-1} + e^{u+k_t}`` for the denominator of ``y_t``. With ``g_t = dL/dy_t`` and ``alpha_t = dL/da_t``,
``beta_t = dL/db_t`` (the gradient reaching the state after token t, from later tokens and from the returned
state)::

    dL/dv_t = g_t e^{u+k_t} / D_t + alpha_t e^{k_t}
    dL/dk_t = g_t e^{u+k_t} (v_t - y_t) / D_t + e^{k_t} (alpha_t v_t + beta_t)
    dL/du   = sum_{t,b} g_t e^{u+k_t} (v_t - y_t) / D_t
    dL/dw   = sum_{t,b} e^w (alpha_t a_{t-1} + beta_t b_{t-1})
    alpha_{t-1} = g_t / D_t + e^w alpha_t,   beta_{t-1} = -g_t y_t / D_t + e^w beta_t

starting from ``alpha_{T-1} = dL/dp_T e^{-o_T}``, ``beta_{T-1} = dL/dq_T e^{-o_T}`` and ending with
``dL/dp_0 = alpha_{-1} e^{o_0}``, ``dL/dq_0 = beta_{-1} e^{o_0}``: the state's ``o`` is a constant shift (no gradient
in or out), which changes no gradient of ``y`` since ``y`` depends on ``a`` and ``b`` only.

``alpha`` and ``beta`` span hundreds of orders of magnitude, so they are held as ``alpha = A e^{-r}``,
``beta = B e^{-r}`` with a running shift ``r`` (``r_{T-1} = o_T``, ``r_{t-1} = min(m_t, r_t - w)`` where ``m_t`` is the
output's max exponent). By induction ``r_t >= o_t >= max(k_t, w + o_{t-1})``, so every exponential below has an
argument <= 0 and nothing overflows, whatever the size of ``k`` or ``w``. ``triton_kernels/wkv.py`` repeats these
formulas operation by operation.
"""

from __future__ import annotations

from typing import Optional

import torch

from .naive import O_INIT

__all__ = ["wkv_forward", "wkv_backward", "initial_state"]


def initial_state(k: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The empty state ``[3, B, C]``: ``p = q = 0``, ``o = O_INIT``."""
    s = torch.zeros((3,) + tuple(k.shape[1:]), dtype=dtype, device=k.device)
    s[2] = O_INIT
    return s


@torch.no_grad()
def wkv_forward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor,
                save: bool) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """``(y [T, B, C] in the state dtype, new state [3, B, C], saved [T, 3, B, C] or None)``.

    ``state`` (never None here) sets the accumulation dtype; inputs are cast to it token by token.
    """
    acc = state.dtype
    w, u = w.to(acc), u.to(acc)
    T = k.shape[0]
    p, q, o = (s.clone() for s in state.unbind(0))
    y = torch.empty(k.shape, dtype=acc, device=k.device)
    saved = torch.empty((T,) + tuple(state.shape), dtype=acc, device=k.device) if save else None
    for t in range(T):
        k_t, v_t = k[t].to(acc), v[t].to(acc)
        if saved is not None:
            saved[t, 0].copy_(p)
            saved[t, 1].copy_(q)
            saved[t, 2].copy_(o)
        uk = u + k_t
        m = torch.maximum(o, uk)
        a = torch.exp(o - m)
        b = torch.exp(uk - m)
        torch.div(a * p + b * v_t, a * q + b, out=y[t])
        wo = w + o
        n = torch.maximum(wo, k_t)
        a = torch.exp(wo - n)
        b = torch.exp(k_t - n)
        p = a * p + b * v_t
        q = a * q + b
        o = n
    return y, torch.stack([p, q, o]), saved


@torch.no_grad()
def wkv_backward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, saved: torch.Tensor,
                 o_last: torch.Tensor, grad_y: Optional[torch.Tensor], grad_state: Optional[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/dw [C], dL/du [C], dL/dk, dL/dv [T, B, C], dL/dstate_0 [3, B, C])`` in the accumulation dtype.

    ``saved`` is the forward's state before every token, ``o_last`` the returned state's ``o``; ``grad_y`` /
    ``grad_state`` are None when that output got no gradient. ``dL/dstate_0[2]`` (the shift ``o``) is zero.
    """
    acc = saved.dtype
    w, u = w.to(acc), u.to(acc)
    T = k.shape[0]
    gk = torch.empty(k.shape, dtype=acc, device=k.device)
    gv = torch.empty(k.shape, dtype=acc, device=k.device)
    gw = torch.zeros(k.shape[1:], dtype=acc, device=k.device)
    gu = torch.zeros(k.shape[1:], dtype=acc, device=k.device)
    if grad_state is not None:
        ga, gb = grad_state[0].to(acc).clone(), grad_state[1].to(acc).clone()
    else:
        ga, gb = torch.zeros_like(gw), torch.zeros_like(gw)
    r = o_last.clone()
    for t in range(T - 1, -1, -1):
        p, q, o = saved[t].unbind(0)
        k_t, v_t = k[t].to(acc), v[t].to(acc)
        uk = u + k_t
        m = torch.maximum(o, uk)
        a = torch.exp(o - m)
        b = torch.exp(uk - m)
        den = a * q + b
        y_t = (a * p + b * v_t) / den
        g = grad_y[t].to(acc) / den if grad_y is not None else torch.zeros_like(den)
        gvd = g * b
        gkd = gvd * (v_t - y_t)
        gu += gkd
        e = torch.exp(k_t - r)
        torch.add(gvd, ga * e, out=gv[t])
        torch.add(gkd, e * (ga * v_t + gb), out=gk[t])
        gw += torch.exp(w + o - r) * (ga * p + gb * q)
        r_new = torch.minimum(m, r - w)
        s_out = torch.exp(r_new - m) * g
        s_dec = torch.exp(w - r + r_new)
        ga = s_out + ga * s_dec
        gb = gb * s_dec - s_out * y_t
        r = r_new
    scale = torch.exp(saved[0, 2] - r)
    g_state = torch.stack([ga * scale, gb * scale, torch.zeros_like(ga)])
    return gw.sum(0), gu.sum(0), gk, gv, g_state
