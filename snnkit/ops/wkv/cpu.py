"""The WKV op's PyTorch path: forward scans and hand-written reverse scans, no autograd graph.

In float32 (float64 when an input is float64), vectorised over ``[B, C]``. Only the recurrences are sequential,
and each is split so that a Python-level step is two in-place tensor ops: the forward runs ``o_t = max(w + o_{t-1},
k_t)`` first, then ``(p, q)_t = e^{w + o_{t-1} - o_t} (p, q)_{t-1} + e^{k_t - o_t} (v_t, 1)`` with both factors
computed for a block of tokens at once, and ``y`` for the whole block from the states; the backward likewise. The
arithmetic is that of ``naive.py`` (same formulas, same shifts), so nothing is approximated. The state *before*
every token and the last one, ``(p, q, o)`` as ``[T + 1, 3, B, C]`` (12 bytes per element and token in float32),
is what a gradient needs, saved when one will be asked for.

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
argument <= 0 and nothing overflows, whatever the size of ``k`` or ``w``. The shift recurrence does not involve
``A`` and ``B``, so it runs first (two ops per token), then ``(A, B)_{t-1} = (A, B)_t e^{w - r_t + r_{t-1}} +
e^{r_{t-1} - m_t} g_t / D~_t (1, -y_t)`` with ``D~_t = D_t e^{-m_t}`` (two ops per token), and every term of the
gradients in time-parallel passes. ``triton_kernels/wkv.py`` computes the same formulas token by token in registers.
"""

from __future__ import annotations

from typing import Optional

import torch

from .naive import O_INIT

__all__ = ["wkv_forward", "wkv_backward", "initial_state", "CHUNK"]


def initial_state(k: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The empty state ``[3, B, C]``: ``p = q = 0``, ``o = O_INIT``."""
    s = torch.zeros((3,) + tuple(k.shape[1:]), dtype=dtype, device=k.device)
    s[2] = O_INIT
    return s


#: Tokens per block of the time-parallel passes: bounds their temporaries to a few ``[CHUNK, B, C]`` tensors.
CHUNK = 128


@torch.no_grad()
def wkv_forward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor,
                save: bool) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """``(y [T, B, C] in the state dtype, new state [3, B, C], states [T + 1, 3, B, C] or None)``.

    ``state`` (never None here) sets the accumulation dtype; ``states[t]`` is the state before token t (returned
    for the backward when ``save``). Per block of :data:`CHUNK` tokens, two sequential scans of two in-place ops per
    token (the shifts ``o``, then ``(p, q)``), everything else in time-parallel passes.
    """
    acc = state.dtype
    w, u = w.to(acc), u.to(acc)
    T = k.shape[0]
    if T == 1 and not save:
        return _one_token(w, u, k[0].to(acc), v[0].to(acc), state)
    y = torch.empty(k.shape, dtype=acc, device=k.device)
    states = torch.empty((T + 1,) + tuple(state.shape), dtype=acc, device=k.device)
    states[0].copy_(state)
    o_all, pq_all = states[:, 2], states[:, :2]
    for t0 in range(0, T, CHUNK):
        t1 = min(t0 + CHUNK, T)
        k_c, v_c = k[t0:t1].to(acc), v[t0:t1].to(acc)
        o = o_all[t0:t1 + 1]  # o[j] is the shift before token t0 + j
        wo = torch.empty_like(k_c)
        # views made once: indexing a tensor inside the loop costs as much as the ops themselves
        o_s, wo_s, k_s = o.unbind(0), wo.unbind(0), k_c.unbind(0)
        for j in range(t1 - t0):  # o_t = max(w + o_{t-1}, k_t)
            torch.add(o_s[j], w, out=wo_s[j])
            torch.maximum(wo_s[j], k_s[j], out=o_s[j + 1])
        decay = torch.exp(wo - o[1:]).unsqueeze(1)  # e^{w + o_{t-1} - o_t}
        fresh = torch.exp(k_c - o[1:])  # e^{k_t - o_t}
        fresh = torch.stack([fresh * v_c, fresh], 1)
        pq = pq_all[t0:t1 + 1]
        pq_s, decay_s, fresh_s = pq.unbind(0), decay.unbind(0), fresh.unbind(0)
        for j in range(t1 - t0):  # (p, q)_t = e^{w + o_{t-1} - o_t} (p, q)_{t-1} + e^{k_t - o_t} (v_t, 1)
            torch.mul(pq_s[j], decay_s[j], out=pq_s[j + 1]).add_(fresh_s[j])
        uk = u + k_c
        o_prev = o[:-1]
        m = torch.maximum(o_prev, uk)
        a = torch.exp(o_prev - m)
        b = torch.exp(uk - m)
        torch.div(a * pq[:-1, 0] + b * v_c, a * pq[:-1, 1] + b, out=y[t0:t1])
    return y, states[T].clone(), states if save else None


def _one_token(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, None]:
    """The RNN mode's call (T = 1, no gradient): the recurrence of ``naive.py`` once, with the very operations of the
    block path (so that streaming reproduces a whole-sequence call bit for bit) and none of its bookkeeping."""
    p, q, o = state.unbind(0)
    uk = u + k
    m = torch.maximum(o, uk)
    a = torch.exp(o - m)
    b = torch.exp(uk - m)
    y = (a * p + b * v) / (a * q + b)
    wo = o + w
    o_new = torch.maximum(wo, k)
    decay = torch.exp(wo - o_new)
    fresh = torch.exp(k - o_new)
    pq = state[:2] * decay + torch.stack([fresh * v, fresh])
    return y.unsqueeze(0), torch.cat([pq, o_new.unsqueeze(0)]), None


@torch.no_grad()
def wkv_backward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, states: torch.Tensor,
                 grad_y: Optional[torch.Tensor], grad_state: Optional[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/dw [C], dL/du [C], dL/dk, dL/dv [T, B, C], dL/dstate_0 [3, B, C])`` in the accumulation dtype.

    ``states [T + 1, 3, B, C]`` is the forward's save (``states[t]`` before token t, ``states[T]`` returned);
    ``grad_y`` / ``grad_state`` are None when that output got no gradient. ``dL/dstate_0[2]`` (the shift ``o``)
    is zero. Per block of :data:`CHUNK` tokens from the end: the terms through ``y_t`` in time-parallel passes, then
    two reverse scans of two in-place ops per token (the shifts ``r``, then ``(alpha, beta)`` as ``(A, B)``), then the
    terms through the state in time-parallel passes again.
    """
    acc = states.dtype
    w, u = w.to(acc), u.to(acc)
    T = k.shape[0]
    gk = torch.empty(k.shape, dtype=acc, device=k.device)
    gv = torch.empty(k.shape, dtype=acc, device=k.device)
    gw = torch.zeros(k.shape[1:], dtype=acc, device=k.device)
    gu = torch.zeros_like(gw)
    gab = torch.zeros((2,) + tuple(k.shape[1:]), dtype=acc, device=k.device)  # (A, B) after the current block
    if grad_state is not None:
        gab.copy_(grad_state[:2])
    r = states[T, 2].clone()
    for t1 in range(T, 0, -CHUNK):
        t0 = max(t1 - CHUNK, 0)
        L = t1 - t0
        k_c, v_c = k[t0:t1].to(acc), v[t0:t1].to(acc)
        p, q, o = states[t0:t1].unbind(1)  # before each token
        uk = u + k_c
        m = torch.maximum(o, uk)
        a = torch.exp(o - m)
        b = torch.exp(uk - m)
        den = a * q + b
        y = (a * p + b * v_c) / den
        g = grad_y[t0:t1].to(acc) / den if grad_y is not None else torch.zeros_like(den)
        gv_c, gk_c = gv[t0:t1], gk[t0:t1]
        torch.mul(g, b, out=gv_c)  # the terms through y_t: g e^{u+k-m} / D~ and times (v - y)
        torch.mul(gv_c, v_c - y, out=gk_c)
        gu += gk_c.sum(0)
        rs = torch.empty((L + 1,) + tuple(gw.shape), dtype=acc, device=k.device)  # rs[j + 1] = r_t, t = t0 + j
        rs[L].copy_(r)
        rs_s, m_s = rs.unbind(0), m.unbind(0)
        for j in range(L - 1, -1, -1):  # r_{t-1} = min(m_t, r_t - w)
            torch.sub(rs_s[j + 1], w, out=rs_s[j])
            torch.minimum(rs_s[j], m_s[j], out=rs_s[j])
        s_out = torch.exp(rs[:-1] - m) * g  # the output's share e^{r_{t-1} - m_t} g_t / D~_t
        s_dec = torch.exp(w - rs[1:] + rs[:-1]).unsqueeze(1)  # the decay e^{w - r_t + r_{t-1}}
        push = torch.stack([s_out, -s_out * y], 1)
        gabs = torch.empty((L + 1, 2) + tuple(gw.shape), dtype=acc, device=k.device)  # gabs[j + 1]: after token t
        gabs[L].copy_(gab)
        gabs_s, s_dec_s, push_s = gabs.unbind(0), s_dec.unbind(0), push.unbind(0)
        for j in range(L - 1, -1, -1):  # (A, B)_{t-1} = (A, B)_t e^{w - r_t + r_{t-1}} + e^{r_{t-1} - m_t} g_t (1, -y_t)
            torch.mul(gabs_s[j + 1], s_dec_s[j], out=gabs_s[j]).add_(push_s[j])
        ga, gb = gabs[1:].unbind(1)
        e = torch.exp(k_c - rs[1:])
        gv_c.addcmul_(ga, e)
        gk_c.addcmul_(e, ga * v_c + gb)
        gw += (torch.exp(w + o - rs[1:]) * (ga * p + gb * q)).sum(0)
        r, gab = rs[0].clone(), gabs[0].clone()
    g_state = torch.cat([gab * torch.exp(states[0, 2] - r), torch.zeros_like(gab[:1])])
    return gw.sum(0), gu.sum(0), gk, gv, g_state
