"""Plain-PyTorch LIF: the oracle the Triton kernels are tested against, and the CPU path of ``lif_multistep``.

The neuron (SpikingJelly's LIFNode; Fang et al. ICCV 2021), with ``k = 1 / tau`` and ``u_t = h_t - v_threshold``::

    charge   h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) k        (decay_input=True)
             h_t = v_{t-1} - (v_{t-1} - v_reset) k + x_t          (decay_input=False)
    fire     s_t = H(u_t),  H(0) = 1
    reset    v_t = s_t v_reset + (1 - s_t) h_t                    (hard reset)
             v_t = h_t - s_t v_threshold                          (soft reset, v_reset=None; charge uses v_reset=0)

Backward (reverse scan over t; ``c_t`` is dL/dv_t arriving from h_{t+1})::

    g_t      = dL/dv_t (direct) + c_t
    r_t      = dv_t/dh_t = (1 - s_t) [+ (v_reset - h_t) sg'(u_t)]  (hard; bracket only if the reset is not detached)
             = 1 [- v_threshold sg'(u_t)]                          (soft)
    dL/dh_t  = dL/ds_t sg'(u_t) + g_t r_t
    dL/dx_t  = dL/dh_t k  (decay_input)  or  dL/dh_t
    c_{t-1}  = dL/dh_t (1 - k);  dL/dv_0 = c_{-1}
    dL/dk    = sum_t dL/dh_t (h_t - v_{t-1}) / k  (decay_input)  or  -sum_t dL/dh_t (v_{t-1} - v_reset)

The forward scan saves one tensor for the backward pass: ``h`` in the state dtype ("exact": 4 bytes per neuron-step),
or ``u = h - v_threshold`` in float16 ("compact": 2 bytes). In compact mode ``|u|`` is clamped to float16's normal
range [2^-14, 65504] keeping its sign, so the sign is the spike (recovered exactly) and ``h`` comes back with a
relative error of at most 2^-11 of ``|u|`` (absolute 2^-14 within 2^-14 of the threshold, where every surrogate is
flat). The error in dL/dx is that of ``sg'`` and the reset term at the rounded ``u``: about 1e-3 relative.

These loops run one fused step per time step without building an autograd graph: the autograd.Function in
``snnkit.ops.lif`` calls them for CPU tensors. Every formula mirrors ``snnkit.kernels.lif`` operation by operation so
that the two agree to the last bit or two in float32 (the CPU loop fuses a few multiply-adds, which can round once
where the kernels round twice, or the reverse where the GPU compiler contracts them).
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..surrogate import Surrogate, from_kernel_id

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the membrane potential is carried in: float64 for float64 inputs, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def surrogate_constants(kernel_id: int, alpha: float) -> tuple[float, float]:
    """The two constants each surrogate formula uses, computed once in double precision (shared with the kernels)."""
    if kernel_id == 0:  # ATan: (alpha / 2) / (1 + (c1 u)^2)
        return math.pi / 2 * alpha, alpha / 2
    if kernel_id == 1:  # Sigmoid: alpha s (1 - s), s = sigmoid(alpha u)
        return alpha, alpha
    if kernel_id == 2:  # Triangle: max(0, alpha - alpha^2 |u|)
        return alpha, alpha * alpha
    if kernel_id == 3:  # Rectangle: alpha on |u| < 1 / (2 alpha)
        return alpha, 0.5 / alpha
    raise ValueError(f"unknown surrogate kernel_id {kernel_id}")


def _rsub(c: float, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``c - a`` into ``out`` (torch.rsub has no ``out=``)."""
    return torch.sub(a.new_full((), c), a, out=out)


def surrogate_derivative(u: torch.Tensor, kernel_id: int, alpha: float, out: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
    """``sg'(u)`` with exactly the operation order of the Triton kernels (into ``out`` when given)."""
    c1, c2 = surrogate_constants(kernel_id, alpha)
    sg = torch.empty_like(u) if out is None else out
    if kernel_id == 0:  # c2 / (1 + (u c1)^2)
        torch.mul(u, c1, out=sg)
        sg.mul_(sg).add_(1)
        return torch.div(sg.new_full((), c2), sg, out=sg)
    if kernel_id == 1:  # (s - s^2) c2, s = sigmoid(u c1)
        torch.sigmoid(torch.mul(u, c1, out=sg), out=sg)
        return sg.addcmul_(sg, sg, value=-1).mul_(c2)
    torch.abs(u, out=sg)
    if kernel_id == 2:  # max(0, c1 - |u| c2)
        return _rsub(c1, sg.mul_(c2), out=sg).clamp_min_(0)
    return sg.copy_(sg < c2).mul_(c1)  # c1 where |u| < c2


def _charge_into(h: torch.Tensor, x_t: torch.Tensor, v: torch.Tensor, k, vr: float, decay_input: bool) -> None:
    """``h = v + (x_t - (v - vr)) k`` or ``h = v - (v - vr) k + x_t``, written into ``h`` in the kernels' order."""
    if decay_input:
        torch.sub(x_t, torch.sub(v, vr, out=h) if vr != 0 else v, out=h)
        if isinstance(k, torch.Tensor):
            h.mul_(k).add_(v)
        else:
            torch.add(v, h, alpha=k, out=h)  # one fused pass: v + k (x - (v - vr))
    else:
        torch.sub(v, vr, out=h) if vr != 0 else h.copy_(v)
        torch.sub(v, h.mul_(k), out=h)
        h.add_(x_t)


def _after_reset(h: torch.Tensor, u: torch.Tensor, s: torch.Tensor, v_reset: Optional[float],
                 out: Optional[torch.Tensor] = None) -> torch.Tensor:
    if v_reset is None:
        return torch.where(s, u, h, out=out)  # h - v_threshold where it fired
    return torch.where(s, h.new_full((), v_reset), h, out=out)


@torch.no_grad()
def lif_forward_reference(
    x: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: float,
    v_reset: Optional[float],
    decay_input: bool,
    store_v_seq: bool,
    compact: bool,
    save: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scan the LIF forward over ``x [T, ...]``.

    Returns ``(spikes, v_out, saved)``: spikes in ``x.dtype``; ``v_out`` the final potential ``[...]`` in the state
    dtype, or the whole sequence ``[T, ...]`` in ``x.dtype`` when ``store_v_seq``; ``saved`` the tensor the backward needs (see the module
    docstring), or an empty tensor when ``save`` is False.
    """
    sdt = state_dtype(x.dtype)
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full(x.shape[1:], vr, dtype=sdt, device=x.device) if v0 is None else v0.to(sdt)
    k = inv_tau.to(sdt) if isinstance(inv_tau, torch.Tensor) else inv_tau
    spikes = torch.empty_like(x)
    v_seq = torch.empty_like(x) if store_v_seq else None
    saved_dtype = torch.float16 if compact else sdt
    saved = torch.empty(x.shape if save else (0,), dtype=saved_dtype, device=x.device)
    # Work buffers reused every step: a fresh multi-MB tensor per op would page-fault on every step on CPU.
    h_buf, u, v_bufs = torch.empty_like(v), torch.empty_like(v), (torch.empty_like(v), torch.empty_like(v))
    s = torch.empty(v.shape, dtype=torch.bool, device=x.device)
    x_buf = None if x.dtype == sdt else torch.empty_like(v)
    for t in range(x.shape[0]):
        h = saved[t] if (save and not compact) else h_buf
        _charge_into(h, x[t] if x_buf is None else x_buf.copy_(x[t]), v, k, vr, decay_input)
        if v_reset is None or compact:
            torch.sub(h, v_threshold, out=u)
        torch.ge(h, v_threshold, out=s)  # h >= v_th exactly when h - v_th >= 0 (IEEE subtraction is exact at 0)
        spikes[t].copy_(s)
        if save and compact:
            saved[t].copy_(_compact(u, s))
        v = _after_reset(h, u, s, v_reset, out=v_bufs[t % 2])
        if v_seq is not None:
            v_seq[t].copy_(v)
    return spikes, (v_seq if v_seq is not None else v), saved


def _compact(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``u`` with its magnitude clamped to [2^-14, 65504] (float16's normal range) and the spike as its sign."""
    return torch.where(s, u.clamp(FP16_MIN_NORMAL, FP16_MAX), u.clamp(-FP16_MAX, -FP16_MIN_NORMAL))


def _unpack_saved(saved_t: torch.Tensor, v_threshold: float, sdt: torch.dtype, compact: bool):
    """``(h, u, s)`` of one time step from what the forward saved."""
    if compact:
        u = saved_t.to(sdt)
        return u + v_threshold, u, u >= 0
    u = saved_t - v_threshold
    return saved_t, u, u >= 0


@torch.no_grad()
def lif_backward_reference(
    grad_spikes: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    saved: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: float,
    v_reset: Optional[float],
    decay_input: bool,
    detach_reset: bool,
    surrogate_id: int,
    alpha: float,
    store_v_seq: bool,
    compact: bool,
    tau_grad: bool,
    x_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reverse scan: returns ``(dL/dx [T, ...] in x_dtype, dL/dv0 [...] in the state dtype, dL/dk scalar)``.

    ``grad_v`` is dL/dv_out (``[T, ...]`` when ``store_v_seq`` else ``[...]``); either gradient may be None (unused).
    ``dL/dk`` (k = 1/tau) is only computed when ``tau_grad``, else it is 0.
    """
    sdt = state_dtype(x_dtype)
    T = saved.shape[0]
    vr = 0.0 if v_reset is None else v_reset
    k = inv_tau.to(sdt) if isinstance(inv_tau, torch.Tensor) else inv_tau
    one_minus_k = 1 - k
    grad_x = torch.empty(saved.shape, dtype=x_dtype, device=saved.device)
    carry = torch.zeros(saved.shape[1:], dtype=sdt, device=saved.device)
    if grad_v is not None and not store_v_seq:
        carry.add_(grad_v.to(sdt))
    grad_k = torch.zeros((), dtype=sdt, device=saved.device)
    sg, r, gh, tmp = (torch.empty_like(carry) for _ in range(4))  # reused every step (see the forward)
    g_buf = torch.empty_like(carry)

    def as_state(g: torch.Tensor) -> torch.Tensor:  # a bf16/fp16 gradient step, converted into a reused buffer
        return g if g.dtype == sdt else g_buf.copy_(g)

    for t in range(T - 1, -1, -1):
        h, u, s = _unpack_saved(saved[t], v_threshold, sdt, compact)
        surrogate_derivative(u, surrogate_id, alpha, out=sg)
        if grad_v is not None and store_v_seq:
            carry.add_(as_state(grad_v[t]))  # carry now holds g_t = dL/dv_t
        if v_reset is not None:  # r_t = (1 - s_t) [+ (v_reset - h_t) sg']
            torch.logical_not(s, out=r)
            if not detach_reset:
                r.addcmul_(_rsub(v_reset, h, out=tmp), sg)
            torch.mul(carry, r, out=gh)
        elif detach_reset:  # r_t = 1
            gh.copy_(carry)
        else:  # r_t = 1 - v_threshold sg'
            _rsub(1.0, torch.mul(sg, v_threshold, out=r), out=r)
            torch.mul(carry, r, out=gh)
        if grad_spikes is not None:
            gh.addcmul_(as_state(grad_spikes[t]), sg)
        if decay_input:
            if x_dtype == sdt:
                torch.mul(gh, k, out=grad_x[t])
            else:
                grad_x[t].copy_(torch.mul(gh, k, out=tmp))
        else:
            grad_x[t].copy_(gh)
        torch.mul(gh, one_minus_k, out=carry)
        if tau_grad:
            if t > 0:
                hp, up, sp = _unpack_saved(saved[t - 1], v_threshold, sdt, compact)
                v_prev = _after_reset(hp, up, sp, v_reset)
            elif v0 is not None:
                v_prev = v0.to(sdt)
            else:
                v_prev = torch.full_like(h, vr)
            dh_dk = (h - v_prev) / k if decay_input else -(v_prev - vr)
            grad_k = grad_k + (gh * dh_dk).sum()
    return grad_x, carry, grad_k


def lif_multistep_naive(
    x: torch.Tensor,
    v0: Optional[torch.Tensor] = None,
    *,
    tau: float | torch.Tensor = 2.0,
    v_threshold: float = 1.0,
    v_reset: Optional[float] = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same neuron written step by step with autograd doing the backward (slow; a second, independent oracle).

    Returns ``(spikes, v_seq)``. It differs from :func:`lif_forward_reference` only in letting autograd derive the
    reverse scan from the forward, which is what tests compare the hand-written backward against.
    """
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], vr) if v0 is None else v0
    spikes, vs = [], []
    for x_t in x:
        h = v + (x_t - (v - vr)) / tau if decay_input else v - (v - vr) / tau + x_t
        s = surrogate(h - v_threshold)
        s_r = s.detach() if detach_reset else s
        v = h - s_r * v_threshold if v_reset is None else s_r * v_reset + (1 - s_r) * h
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)


__all__ = [
    "lif_forward_reference",
    "lif_backward_reference",
    "lif_multistep_naive",
    "surrogate_derivative",
    "surrogate_constants",
    "state_dtype",
    "from_kernel_id",
]
