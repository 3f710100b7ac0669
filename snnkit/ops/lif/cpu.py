"""The LIF op's CPU path: one fused step per time step, no autograd graph, work buffers reused across steps.

The neuron (SpikingJelly's LIFNode; Fang et al. ICCV 2021), with ``k = 1 / tau`` and ``u_t = h_t - v_threshold``::

    charge   h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) k        (decay_input=True)
             h_t = v_{t-1} - (v_{t-1} - v_reset) k + x_t          (decay_input=False)
    fire     s_t = H(u_t),  H(0) = 1
    reset    v_t = s_t v_reset + (1 - s_t) h_t                    (hard reset)
             v_t = h_t - s_t v_threshold                          (soft reset, v_reset=None; charge uses v_reset=0)
    no fire  v_t = h_t, output h_t                                (non-spiking mode, v_threshold=None)

Backward (reverse scan over t; ``c_t`` is dL/dv_t arriving from h_{t+1})::

    g_t      = dL/dv_t (direct) + c_t
    r_t      = dv_t/dh_t = (1 - s_t) [+ (v_reset - h_t) sg'(u_t)]  (hard; bracket only if the reset is not detached)
             = 1 [- v_threshold sg'(u_t)]                          (soft)
             = 1                                                   (non-spiking)
    dL/dh_t  = dL/ds_t sg'(u_t) + g_t r_t                          (non-spiking: dL/dout_t + g_t)
    dL/dx_t  = dL/dh_t k  (decay_input)  or  dL/dh_t
    c_{t-1}  = dL/dh_t (1 - k);  dL/dv_0 = c_{-1}
    dL/dk    = sum_t dL/dh_t (h_t - v_{t-1}) / k  (decay_input)  or  -sum_t dL/dh_t (v_{t-1} - v_reset)

The forward saves one tensor for the backward: ``h`` in the state dtype ("exact": 4 bytes per neuron-step), or
``u = h - v_threshold`` in float16 ("compact": 2 bytes). In compact mode ``|u|`` is clamped to float16's normal
range [2^-14, 65504] keeping its sign, so the sign is the spike (recovered exactly) and ``h`` comes back with a
relative error of at most 2^-11 of ``|u|`` (absolute 2^-14 within 2^-14 of the threshold, where every surrogate is
flat). The error in dL/dx is that of ``sg'`` and the reset term at the rounded ``u``: about 1e-3 relative. The
non-spiking mode is linear in ``x``: it saves nothing, except ``h`` (exact) when tau is learnable.

Every formula mirrors ``triton_kernels/lif.py`` operation by operation so that the two agree to the last bit or two in
float32 (the CPU loop fuses a few multiply-adds, which can round once where the kernels round twice, or the reverse
where the GPU compiler contracts them). The charge equation is written once here, in :func:`_charge_into`.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...surrogate import surrogate_derivative

__all__ = ["lif_forward_cpu", "lif_backward_cpu", "state_dtype", "FP16_MAX", "FP16_MIN_NORMAL"]

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the membrane potential is carried in: float64 for float64 inputs, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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


def _compact(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``u`` with its magnitude clamped to [2^-14, 65504] (float16's normal range) and the spike as its sign."""
    return torch.where(s, u.clamp(FP16_MIN_NORMAL, FP16_MAX), u.clamp(-FP16_MAX, -FP16_MIN_NORMAL))


@torch.no_grad()
def lif_forward_cpu(
    x: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: Optional[float],
    v_reset: Optional[float],
    decay_input: bool,
    store_v_seq: bool,
    compact: bool,
    save: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scan the LIF forward over ``x [T, ...]``.

    Returns ``(out, v_out, saved)``: ``out`` the spikes (or, with ``v_threshold=None``, the potential ``h_t``) in
    ``x.dtype``; ``v_out`` the final potential ``[...]`` in the state dtype, or the whole sequence ``[T, ...]`` in
    ``v0``'s dtype (``x.dtype`` without ``v0``) when ``store_v_seq``; ``saved`` the tensor the backward needs (see the module docstring), or an empty
    tensor when ``save`` is False.
    """
    sdt = state_dtype(x.dtype)
    spiking = v_threshold is not None
    compact = compact and spiking
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full(x.shape[1:], vr, dtype=sdt, device=x.device) if v0 is None else v0.to(sdt)
    k = inv_tau.to(sdt) if isinstance(inv_tau, torch.Tensor) else inv_tau
    out = torch.empty_like(x)
    v_seq = torch.empty(x.shape, dtype=x.dtype if v0 is None else v0.dtype, device=x.device) if store_v_seq else None
    saved = torch.empty(x.shape if save else (0,), dtype=torch.float16 if compact else sdt, device=x.device)
    # Work buffers reused every step: a fresh multi-MB tensor per op would page-fault on every step on CPU.
    h_buf, u, v_bufs = torch.empty_like(v), torch.empty_like(v), (torch.empty_like(v), torch.empty_like(v))
    s = torch.empty(v.shape, dtype=torch.bool, device=x.device)
    x_buf = None if x.dtype == sdt else torch.empty_like(v)
    for t in range(x.shape[0]):
        h = saved[t] if (save and not compact) else h_buf
        _charge_into(h, x[t] if x_buf is None else x_buf.copy_(x[t]), v, k, vr, decay_input)
        if not spiking:
            out[t].copy_(h)
            v = v_bufs[t % 2].copy_(h)  # h's buffer is overwritten by the next charge, which still reads v
        else:
            if v_reset is None or compact:
                torch.sub(h, v_threshold, out=u)
            torch.ge(h, v_threshold, out=s)  # h >= v_th exactly when h - v_th >= 0 (IEEE subtraction is exact at 0)
            out[t].copy_(s)
            if save and compact:
                saved[t].copy_(_compact(u, s))
            v = _after_reset(h, u, s, v_reset, out=v_bufs[t % 2])
        if v_seq is not None:
            v_seq[t].copy_(v)
    return out, (v_seq if v_seq is not None else v), saved


def _unpack_saved(saved_t: torch.Tensor, v_threshold: float, sdt: torch.dtype, compact: bool):
    """``(h, u, s)`` of one time step from what the forward saved."""
    if compact:
        u = saved_t.to(sdt)
        return u + v_threshold, u, u >= 0
    u = saved_t - v_threshold
    return saved_t, u, u >= 0


@torch.no_grad()
def lif_backward_cpu(
    grad_out: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    saved: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: Optional[float],
    v_reset: Optional[float],
    decay_input: bool,
    detach_reset: bool,
    surrogate_id: int,
    alpha: float,
    store_v_seq: bool,
    compact: bool,
    tau_grad: bool,
    x_dtype: torch.dtype,
    shape: tuple[int, ...],
    inv_sigma: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reverse scan: returns ``(dL/dx [T, ...] in x_dtype, dL/dv0 [...] in the state dtype, dL/dk scalar)``.

    ``grad_out`` is dL/dout (spikes, or potentials in non-spiking mode), ``grad_v`` dL/dv_out (``[T, ...]`` when
    ``store_v_seq`` else ``[...]``); either may be None (unused). ``shape`` is ``x.shape``. ``dL/dk`` (k = 1/tau) is
    only computed when ``tau_grad``, else it is 0. ``inv_sigma`` ``[T, C]`` (PDSG only): the measured ``1 / sigma``
    per step and channel (dim 2 of ``shape``), which replaces the surrogate's first constant.
    """
    sdt = state_dtype(x_dtype)
    spiking = v_threshold is not None
    compact = compact and spiking
    vth = 0.0 if v_threshold is None else v_threshold
    T = shape[0]
    device = saved.device
    vr = 0.0 if v_reset is None else v_reset
    k = inv_tau.to(sdt) if isinstance(inv_tau, torch.Tensor) else inv_tau
    one_minus_k = 1 - k
    grad_x = torch.empty(shape, dtype=x_dtype, device=device)
    carry = torch.zeros(shape[1:], dtype=sdt, device=device)
    if grad_v is not None and not store_v_seq:
        carry.add_(grad_v.to(sdt))
    grad_k = torch.zeros((), dtype=sdt, device=device)
    sg, r, gh, tmp = (torch.empty_like(carry) for _ in range(4))  # reused every step (see the forward)
    g_buf = torch.empty_like(carry)
    # PDSG's per-channel constant, viewed to broadcast over one step [B, C, ...] (channel at dim 1 of a step).
    c1_shape = [1, -1] + [1] * (len(shape) - 3) if len(shape) >= 3 else [-1]

    def as_state(g: torch.Tensor) -> torch.Tensor:  # a bf16/fp16 gradient step, converted into a reused buffer
        return g if g.dtype == sdt else g_buf.copy_(g)

    def v_after(t: int) -> torch.Tensor:  # v_t rebuilt from the save (never stored separately)
        if t < 0:
            return v0.to(sdt) if v0 is not None else torch.full_like(carry, vr)
        if not spiking:
            return saved[t]
        hp, up, sp = _unpack_saved(saved[t], vth, sdt, compact)
        return _after_reset(hp, up, sp, v_reset)

    for t in range(T - 1, -1, -1):
        if grad_v is not None and store_v_seq:
            carry.add_(as_state(grad_v[t]))  # carry now holds g_t = dL/dv_t
        if not spiking:
            gh.copy_(carry)
            if grad_out is not None:
                gh.add_(as_state(grad_out[t]))
        else:
            h, u, s = _unpack_saved(saved[t], vth, sdt, compact)
            surrogate_derivative(u, surrogate_id, alpha, out=sg,
                                 c1=None if inv_sigma is None else inv_sigma[t].view(c1_shape))
            if v_reset is not None:  # r_t = (1 - s_t) [+ (v_reset - h_t) sg']
                torch.logical_not(s, out=r)
                if not detach_reset:
                    r.addcmul_(torch.sub(r.new_full((), v_reset), h, out=tmp), sg)
                torch.mul(carry, r, out=gh)
            elif detach_reset:  # r_t = 1
                gh.copy_(carry)
            else:  # r_t = 1 - v_threshold sg'
                torch.sub(r.new_full((), 1.0), torch.mul(sg, vth, out=r), out=r)
                torch.mul(carry, r, out=gh)
            if grad_out is not None:
                gh.addcmul_(as_state(grad_out[t]), sg)
        if decay_input:
            if x_dtype == sdt:
                torch.mul(gh, k, out=grad_x[t])
            else:
                grad_x[t].copy_(torch.mul(gh, k, out=tmp))
        else:
            grad_x[t].copy_(gh)
        torch.mul(gh, one_minus_k, out=carry)
        if tau_grad:
            h_t = v_after(t) if not spiking else _unpack_saved(saved[t], vth, sdt, compact)[0]
            v_prev = v_after(t - 1)
            dh_dk = (h_t - v_prev) / k if decay_input else -(v_prev - vr)
            grad_k = grad_k + (gh * dh_dk).sum()
    return grad_x, carry, grad_k
