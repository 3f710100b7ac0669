"""Fused multi-step LIF kernels: one forward scan and one reverse scan over T, the state held in registers.

Each program owns ``BLOCK`` neurons of the flattened ``[T, N]`` problem and walks all T steps, so every input is read
once and every output written once: the kernels are memory-bound and their cost is the bytes below (b = bytes of the
input dtype, S = 4 for exact / 2 for compact saves)::

    forward   read x (b)        write spikes (b), saved (S) [, v_seq (b)]
    backward  read ds (b), saved (S) [, dv_seq (b)]          write dx (b)

The math and its operation order are those of ``snnkit/ops/lif/cpu.py`` (the docstring there has the equations).
``SPIKING=False`` is the non-spiking mode (``v_threshold=None``): charge only, the potential is the output, no fire
and no reset; it saves ``h`` only for a learnable tau, and its backward reads no save otherwise.
Pointers advance by N per step rather than indexing ``t * N``, so T x N beyond 2^31 never overflows int32 offsets.
No autograd here: ``snnkit/ops/lif/launch.py`` launches them and ``snnkit/ops/lif/function.py`` wraps them. Written for triton >= 3.2.
"""

from __future__ import annotations

import triton
import triton.language as tl

from snnkit.surrogate import ATAN_ID, PDSG_ID, RECTANGLE_ID, SIGMOID_ID, TRIANGLE_ID

# Globals read inside @triton.jit must be tl.constexpr instances (a compiled kernel rejects plain globals; the
# interpreter does not, which is why tests/ops/test_lif_kernel_compile.py compiles every variant for real GPUs).
FP16_MAX = tl.constexpr(65504.0)
FP16_MIN_NORMAL = tl.constexpr(6.103515625e-05)  # 2^-14: compact saves never produce float16 subnormals
FP32_MAX = tl.constexpr(3.4028234663852886e38)
# Surrogate ids from the one table in snnkit/surrogate.py.
SG_ATAN = tl.constexpr(ATAN_ID)
SG_SIGMOID = tl.constexpr(SIGMOID_ID)
SG_TRIANGLE = tl.constexpr(TRIANGLE_ID)
SG_RECTANGLE = tl.constexpr(RECTANGLE_ID)
SG_PDSG = tl.constexpr(PDSG_ID)


@triton.jit
def _surrogate_grad(u, c1, c2, SG_ID: tl.constexpr):
    # Constants c1, c2 come from snnkit.surrogate.surrogate_constants, computed once in double precision; each
    # branch repeats the operation order of that table's CPU formula.
    if SG_ID == SG_ATAN:
        z = u * c1
        g = c2 / (1.0 + z * z)
    elif SG_ID == SG_SIGMOID:
        sig = tl.sigmoid(u * c1)
        g = (sig - sig * sig) * c2
    elif SG_ID == SG_TRIANGLE:
        g = tl.maximum(c1 - tl.abs(u) * c2, 0.0)
    elif SG_ID == SG_PDSG:
        # c1 is the measured 1 / sigma of each element's channel at this step (a tensor), c2 = 1 / sqrt(2 pi).
        z = u * c1 - 0.5
        g = tl.exp(z * z * -0.5) * c1 * c2
    else:
        tl.static_assert(SG_ID == SG_RECTANGLE, "unknown surrogate id")
        g = tl.where(tl.abs(u) < c2, c1, 0.0)
    return g


@triton.jit
def lif_forward_kernel(
    x_ptr, v0_ptr, tau_ptr, spikes_ptr, v_out_ptr, saved_ptr, bad_ptr,
    T, N, inv_tau, v_threshold, v_reset,
    SPIKING: tl.constexpr, HAS_V0: tl.constexpr, TAU_FROM_PTR: tl.constexpr, HARD_RESET: tl.constexpr,
    DECAY_INPUT: tl.constexpr, STORE_V_SEQ: tl.constexpr, SAVE: tl.constexpr, COMPACT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if HARD_RESET:
        vr = v_reset
    else:
        vr = 0.0
    if HAS_V0:
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        v = tl.zeros([BLOCK], dtype=tl.float32) + vr
    if TAU_FROM_PTR:
        k = 1.0 / tl.load(tau_ptr).to(tl.float32)
    else:
        k = inv_tau
    # Non-finite inputs are flagged here, in registers, instead of by a separate pass over x.
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    x_ptrs = x_ptr + offs
    s_ptrs = spikes_ptr + offs
    saved_ptrs = saved_ptr + offs
    v_ptrs = v_out_ptr + offs
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
        bad = bad | (~(tl.abs(x) <= FP32_MAX)).to(tl.int32)  # NaN fails every comparison, inf exceeds the max
        if DECAY_INPUT:
            h = v + (x - (v - vr)) * k
        else:
            h = v - (v - vr) * k + x
        if SPIKING:
            u = h - v_threshold
            s = u >= 0.0
            tl.store(s_ptrs, tl.where(s, 1.0, 0.0).to(spikes_ptr.dtype.element_ty), mask=mask)
            if SAVE:
                if COMPACT:
                    # |u| in [2^-14, 65504] with the sign of u - v_th: the sign alone encodes the spike.
                    uc = tl.where(s, tl.minimum(tl.maximum(u, FP16_MIN_NORMAL), FP16_MAX),
                                  tl.maximum(tl.minimum(u, -FP16_MIN_NORMAL), -FP16_MAX))
                    tl.store(saved_ptrs, uc.to(tl.float16), mask=mask)
                else:
                    tl.store(saved_ptrs, h, mask=mask)
            if HARD_RESET:
                v = tl.where(s, vr, h)
            else:
                v = tl.where(s, u, h)
        else:
            tl.store(s_ptrs, h.to(spikes_ptr.dtype.element_ty), mask=mask)
            if SAVE:
                tl.store(saved_ptrs, h, mask=mask)
            v = h
        if STORE_V_SEQ:
            tl.store(v_ptrs, v.to(v_out_ptr.dtype.element_ty), mask=mask)
            v_ptrs += N
        x_ptrs += N
        s_ptrs += N
        saved_ptrs += N
    if not STORE_V_SEQ:
        tl.store(v_ptrs, v.to(v_out_ptr.dtype.element_ty), mask=mask)
    tl.store(bad_ptr + pid, tl.max(bad, axis=0))


@triton.jit
def _unpack_saved(saved, v_threshold, COMPACT: tl.constexpr):
    if COMPACT:
        u = saved.to(tl.float32)
        s = u >= 0.0
        h = u + v_threshold
    else:
        h = saved
        u = h - v_threshold
        s = u >= 0.0
    return h, u, s


@triton.jit
def lif_backward_kernel(
    grad_s_ptr, grad_v_ptr, saved_ptr, v0_ptr, tau_ptr, grad_x_ptr, grad_v0_ptr, grad_k_ptr, inv_sigma_ptr,
    T, N, inv_tau, v_threshold, v_reset, c1, c2, C, INNER,
    SG_ID: tl.constexpr, SPIKING: tl.constexpr, HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, HAS_V0: tl.constexpr,
    TAU_FROM_PTR: tl.constexpr, HARD_RESET: tl.constexpr, DETACH_RESET: tl.constexpr, DECAY_INPUT: tl.constexpr,
    STORE_V_SEQ: tl.constexpr, COMPACT: tl.constexpr, TAU_GRAD: tl.constexpr, UNIFORM_GS: tl.constexpr,
    UNIFORM_GV: tl.constexpr, WRITE_GV0: tl.constexpr, BLOCK: tl.constexpr,
):
    # UNIFORM_GS / UNIFORM_GV: the incoming gradient is one value broadcast to every element (stride 0, as from
    # out.sum()); it is read once instead of being materialised as a T x N tensor. WRITE_GV0: v0 needs a gradient.
    # SG_ID == SG_PDSG: inv_sigma_ptr holds 1 / sigma [T, C]; an element's channel is (offset // INNER) % C, INNER
    # the size of the dims after the channel. Other surrogates never read inv_sigma_ptr, C or INNER.
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if HARD_RESET:
        vr = v_reset
    else:
        vr = 0.0
    if TAU_FROM_PTR:
        k = 1.0 / tl.load(tau_ptr).to(tl.float32)
    else:
        k = inv_tau
    one_minus_k = 1.0 - k
    carry = tl.zeros([BLOCK], dtype=tl.float32)
    if HAS_GS:
        if UNIFORM_GS:
            gs_uniform = tl.load(grad_s_ptr).to(tl.float32)
    if HAS_GV:
        if UNIFORM_GV:
            gv_uniform = tl.load(grad_v_ptr).to(tl.float32)
            if not STORE_V_SEQ:
                carry = carry + gv_uniform
        elif not STORE_V_SEQ:
            carry = carry + tl.load(grad_v_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_V0:
        v_first = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        v_first = tl.zeros([BLOCK], dtype=tl.float32) + vr
    grad_k = tl.zeros([BLOCK], dtype=tl.float32)
    # int64 offset of step T-1; built from a tensor because T or N equal to 1 arrive as constexprs.
    last = (offs * 0 + (T - 1)) * N + offs
    saved_ptrs = saved_ptr + last
    gs_ptrs = grad_s_ptr + last
    gv_ptrs = grad_v_ptr + last
    gx_ptrs = grad_x_ptr + last
    if SG_ID == SG_PDSG:
        sig_ptrs = inv_sigma_ptr + ((offs * 0 + (T - 1)) * C + (offs // INNER) % C)
    if TAU_GRAD:
        # The tau gradient needs steps t and t-1 of the save; each step's load is carried into the next iteration,
        # so the save is read once per step.
        raw = tl.load(saved_ptrs, mask=mask, other=0.0)
    for i in range(T):
        t = T - 1 - i
        g = carry
        if HAS_GV:
            if STORE_V_SEQ:
                if UNIFORM_GV:
                    g = carry + gv_uniform
                else:
                    g = carry + tl.load(gv_ptrs, mask=mask, other=0.0).to(tl.float32)
        if TAU_GRAD:
            has_prev = (offs * 0 + t) > 0  # broadcast: the interpreter rejects a scalar-bool mask term
            cur = raw
            raw = tl.load(saved_ptrs - N, mask=mask & has_prev, other=0.0)
        elif SPIKING:
            cur = tl.load(saved_ptrs, mask=mask, other=0.0)
        if HAS_GS:
            if UNIFORM_GS:
                gs = gs_uniform
            else:
                gs = tl.load(gs_ptrs, mask=mask, other=0.0).to(tl.float32)
        if SPIKING:
            h, u, s = _unpack_saved(cur, v_threshold, COMPACT)
            if SG_ID == SG_PDSG:
                sg = _surrogate_grad(u, tl.load(sig_ptrs, mask=mask, other=1.0), c2, SG_ID)
                sig_ptrs -= C
            else:
                sg = _surrogate_grad(u, c1, c2, SG_ID)
            if HARD_RESET:
                r = tl.where(s, 0.0, 1.0)
                if not DETACH_RESET:
                    r = r + (vr - h) * sg
            else:
                if DETACH_RESET:
                    r = tl.zeros([BLOCK], dtype=tl.float32) + 1.0
                else:
                    r = 1.0 - sg * v_threshold
            gh = g * r
            if HAS_GS:
                gh = gh + gs * sg
        else:
            # The potential is the output and nothing resets it: dv/dh = 1, no surrogate.
            gh = g
            if HAS_GS:
                gh = gh + gs
        if DECAY_INPUT:
            tl.store(gx_ptrs, (gh * k).to(grad_x_ptr.dtype.element_ty), mask=mask)
        else:
            tl.store(gx_ptrs, gh.to(grad_x_ptr.dtype.element_ty), mask=mask)
        carry = gh * one_minus_k
        if TAU_GRAD:
            # v_{t-1}: rebuilt from the previous step's save (or v0 at t = 0), never stored separately.
            if SPIKING:
                hp, up, sp = _unpack_saved(raw, v_threshold, COMPACT)
                if HARD_RESET:
                    vp = tl.where(sp, vr, hp)
                else:
                    vp = tl.where(sp, up, hp)
            else:
                h = cur
                vp = raw
            vp = tl.where(has_prev, vp, v_first)
            if DECAY_INPUT:
                grad_k += gh * ((h - vp) / k)
            else:
                grad_k += gh * (-(vp - vr))
        saved_ptrs -= N
        gs_ptrs -= N
        gv_ptrs -= N
        gx_ptrs -= N
    if WRITE_GV0:
        tl.store(grad_v0_ptr + offs, carry, mask=mask)
    if TAU_GRAD:
        tl.store(grad_k_ptr + pid, tl.sum(tl.where(mask, grad_k, 0.0), axis=0))


def grid_size(n: int, block: int) -> int:
    return triton.cdiv(n, block)
