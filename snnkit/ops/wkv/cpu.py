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
    """``(y [T, B, C] in the state dtype, new state [3, B, C], states [T + 1, 3, B, C] or None)``.

    ``state`` (never None here) sets the accumulation dtype. With ``save`` every token's new state is written
    straight into its slot of the returned ``states`` (``states[t]`` is the state before token t), so saving costs
    no copy; without it two buffers alternate. Work buffers are reused across tokens: one Python-level step is about
    twenty in-place tensor ops.
    """
    acc = state.dtype
    w, u = w.to(acc), u.to(acc)
    k, v = k.to(acc), v.to(acc)
    T = k.shape[0]
    uk = u + k
    y = torch.empty(k.shape, dtype=acc, device=k.device)
    states = torch.empty((T + 1,) + tuple(state.shape), dtype=acc, device=k.device) if save else \
        torch.empty((2,) + tuple(state.shape), dtype=acc, device=k.device)
    states[0].copy_(state)
    m, a, b, num, den = (torch.empty_like(state[0]) for _ in range(5))
    for t in range(T):
        p, q, o = states[t if save else t % 2].unbind(0)
        p_new, q_new, o_new = states[t + 1 if save else (t + 1) % 2].unbind(0)
        k_t, v_t, uk_t = k[t], v[t], uk[t]
        torch.maximum(o, uk_t, out=m)
        torch.sub(o, m, out=a).exp_()
        torch.sub(uk_t, m, out=b).exp_()
        torch.mul(a, p, out=num).addcmul_(b, v_t)
        torch.mul(a, q, out=den).add_(b)
        torch.div(num, den, out=y[t])
        torch.add(o, w, out=num)  # w + o
        torch.maximum(num, k_t, out=o_new)
        torch.sub(num, o_new, out=a).exp_()
        torch.sub(k_t, o_new, out=b).exp_()
        torch.mul(a, p, out=p_new).addcmul_(b, v_t)
        torch.mul(a, q, out=q_new).add_(b)
    last = states[T if save else T % 2].clone()
    return y, last, states if save else None


@torch.no_grad()
def wkv_backward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, states: torch.Tensor,
                 grad_y: Optional[torch.Tensor], grad_state: Optional[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/dw [C], dL/du [C], dL/dk, dL/dv [T, B, C], dL/dstate_0 [3, B, C])`` in the accumulation dtype.

    ``states [T + 1, 3, B, C]`` is the forward's save (``states[t]`` before token t, ``states[T]`` returned);
    ``grad_y`` / ``grad_state`` are None when that output got no gradient. ``dL/dstate_0[2]`` (the shift ``o``)
    is zero.
    """
    acc = states.dtype
    w, u = w.to(acc), u.to(acc)
    k, v = k.to(acc), v.to(acc)
    T = k.shape[0]
    gk = torch.empty(k.shape, dtype=acc, device=k.device)
    gv = torch.empty(k.shape, dtype=acc, device=k.device)
    uk = u + k
    gw = torch.zeros(k.shape[1:], dtype=acc, device=k.device)
    gu = torch.zeros_like(gw)
    if grad_state is not None:
        ga, gb = grad_state[0].to(acc).clone(), grad_state[1].to(acc).clone()
    else:
        ga, gb = torch.zeros_like(gw), torch.zeros_like(gw)
    r = states[T, 2].clone()
    m, a, b, den, y_t, g, e, tmp, r_new = (torch.empty_like(gw) for _ in range(9))
    for t in range(T - 1, -1, -1):
        p, q, o = states[t].unbind(0)
        k_t, v_t, uk_t = k[t], v[t], uk[t]
        torch.maximum(o, uk_t, out=m)
        torch.sub(o, m, out=a).exp_()
        torch.sub(uk_t, m, out=b).exp_()
        torch.mul(a, q, out=den).add_(b)
        torch.mul(a, p, out=y_t).addcmul_(b, v_t).div_(den)
        if grad_y is not None:
            torch.div(grad_y[t], den, out=g)
        else:
            g.zero_()
        gvt, gkt = gv[t], gk[t]
        torch.mul(g, b, out=gvt)  # the direct terms first: g e^{u+k-m} and times (v - y)
        torch.sub(v_t, y_t, out=tmp)
        torch.mul(gvt, tmp, out=gkt)
        gu.add_(gkt)
        torch.sub(k_t, r, out=e).exp_()
        gvt.addcmul_(ga, e)
        torch.mul(ga, v_t, out=tmp).add_(gb)
        gkt.addcmul_(e, tmp)
        torch.add(o, w, out=e).sub_(r).exp_()  # e^{w + o - r}
        torch.mul(ga, p, out=tmp).addcmul_(gb, q)
        gw.addcmul_(e, tmp)
        torch.sub(r, w, out=r_new)
        torch.minimum(m, r_new, out=r_new)
        torch.sub(r_new, m, out=a).exp_().mul_(g)  # the output's share, e^{r' - m} g
        torch.sub(w, r, out=b).add_(r_new).exp_()  # the decay, e^{w - r + r'}
        ga.mul_(b).add_(a)
        gb.mul_(b).addcmul_(a, y_t, value=-1.0)
        r, r_new = r_new, r
    scale = torch.exp(states[0, 2] - r)
    g_state = torch.stack([ga * scale, gb * scale, torch.zeros_like(ga)])
    return gw.sum(0), gu.sum(0), gk, gv, g_state
