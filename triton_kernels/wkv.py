"""Fused WKV kernels (RWKV-4 / SpikeGPT): one program per (batch element, block of channels), a loop over T.

The recurrence is sequential in T and independent across the B x C lanes, so each lane keeps its state in registers
and walks the whole sequence: every input is read once per scan and every output written once, and T has no
compile-time bound (the reference CUDA kernel keeps per-thread arrays of length T_max). Layout: ``k, v, y [T, B, C]``
contiguous, ``w, u [C]``, states ``[3, B, C]`` as ``(p, q, o)``.

- ``wkv_forward_kernel``: the stable forward of ``snnkit/ops/wkv/naive.py``; optionally (``SAVE``) it writes the
  state before every token and the final one ``[T + 1, 3, B, C]`` for the backward, and (``CHECK``) one int32 flag
  per program for non-finite ``k`` (bit 0) or ``v`` (bit 1);
- ``wkv_backward_kernel``: reads the forward's saved states, or (``RECOMPUTE``) reruns the forward scan writing
  them into a float32 scratch buffer ``[T, 3, B, C]``, then walks back over them with the shifted reverse recurrence of
  ``snnkit/ops/wkv/cpu.py`` (its docstring derives the equations and shows every ``exp`` argument is <= 0), writing
  ``dk, dv``, per-lane partial sums of ``dw, du`` ``[B, C]`` and the gradient of the initial ``(p, q)``.

Each loop loads the next token's inputs before computing the current one: the scan is latency-bound (B x C lanes
are a few warps per SM), and the prefetch overlaps one memory round trip with the arithmetic. Pointers advance by
``B * C`` per token, so ``T x B x C`` beyond 2^31 never overflows int32 offsets. No autograd here:
``snnkit/ops/wkv/launch.py`` launches them. Written for triton >= 3.2.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Globals read inside @triton.jit must be tl.constexpr instances (a compiled kernel rejects plain globals).
O_INIT = tl.constexpr(-1e38)  # the empty state's max exponent; the value of snnkit.ops.wkv.naive.O_INIT
FP32_MAX = tl.constexpr(3.4028234663852886e38)


@triton.jit
def _lanes(C, BLOCK_C: tl.constexpr):
    """This program's channels ``offs_c``, their mask and their int64 offsets ``lane`` into one ``[B, C]`` plane."""
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = offs_c < C
    lane = tl.program_id(0).to(tl.int64) * C + offs_c
    return offs_c, mask, lane


@triton.jit
def _load_kv(k_ptrs, v_ptrs, mask):
    """One token's ``k`` and ``v`` in float32 (0 where masked off)."""
    kt = tl.load(k_ptrs, mask=mask, other=0.0).to(tl.float32)
    vt = tl.load(v_ptrs, mask=mask, other=0.0).to(tl.float32)
    return kt, vt


@triton.jit
def _initial_state(s0_ptr, lane, mask, BC, HAS_STATE: tl.constexpr, BLOCK_C: tl.constexpr):
    """The state ``(p, q, o)`` a scan starts from, in float32: read from ``s0 [3, B, C]`` (``HAS_STATE``), or at rest
    (``p = q = 0``, ``o = O_INIT``)."""
    if HAS_STATE:
        p = tl.load(s0_ptr + lane, mask=mask, other=0.0).to(tl.float32)
        q = tl.load(s0_ptr + BC + lane, mask=mask, other=0.0).to(tl.float32)
        o = tl.load(s0_ptr + 2 * BC + lane, mask=mask, other=0.0).to(tl.float32)
    else:
        p = tl.zeros([BLOCK_C], dtype=tl.float32)
        q = tl.zeros([BLOCK_C], dtype=tl.float32)
        o = tl.zeros([BLOCK_C], dtype=tl.float32) + O_INIT
    return p, q, o


@triton.jit
def _advance(p, q, o, w, kt, vt):
    """One token of the stable state recurrence: the state after ``(kt, vt)`` from the state before it."""
    wo = w + o
    n = tl.maximum(wo, kt)
    a = tl.exp(wo - n)
    b = tl.exp(kt - n)
    return a * p + b * vt, a * q + b, n


@triton.jit
def _store_state(ptrs, p, q, o, mask, BC):
    """Writes ``(p, q, o)`` to the three planes, ``BC`` elements apart, that start at ``ptrs``."""
    tl.store(ptrs, p, mask=mask)
    tl.store(ptrs + BC, q, mask=mask)
    tl.store(ptrs + 2 * BC, o, mask=mask)


@triton.jit
def wkv_forward_kernel(
    w_ptr, u_ptr, k_ptr, v_ptr, y_ptr, s0_ptr, s_out_ptr, states_ptr, bad_ptr,
    T, BC, C,
    HAS_STATE: tl.constexpr, SAVE: tl.constexpr, CHECK: tl.constexpr, BLOCK_C: tl.constexpr,
):
    offs_c, mask, lane = _lanes(C, BLOCK_C)
    w = tl.load(w_ptr + offs_c, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(u_ptr + offs_c, mask=mask, other=0.0).to(tl.float32)
    p, q, o = _initial_state(s0_ptr, lane, mask, BC, HAS_STATE, BLOCK_C)
    k_ptrs = k_ptr + lane
    v_ptrs = v_ptr + lane
    y_ptrs = y_ptr + lane
    sc_ptrs = states_ptr + lane
    # Non-finite k (bit 0) or v (bit 1) are flagged here, in registers, instead of by separate passes over memory.
    bad = tl.zeros([BLOCK_C], dtype=tl.int32)
    kt, vt = _load_kv(k_ptrs, v_ptrs, mask)
    for t in range(T):
        k_ptrs += BC
        v_ptrs += BC
        more = mask & (offs_c * 0 + t + 1 < T)
        k_next, v_next = _load_kv(k_ptrs, v_ptrs, more)
        if SAVE:
            _store_state(sc_ptrs, p, q, o, mask, BC)
            sc_ptrs += 3 * BC
        if CHECK:  # NaN fails every comparison, inf exceeds the max
            bad = bad | (~(tl.abs(kt) <= FP32_MAX)).to(tl.int32) | ((~(tl.abs(vt) <= FP32_MAX)).to(tl.int32) * 2)
        uk = u + kt
        m = tl.maximum(o, uk)
        a = tl.exp(o - m)
        b = tl.exp(uk - m)
        tl.store(y_ptrs, ((a * p + b * vt) / (a * q + b)).to(y_ptr.dtype.element_ty), mask=mask)
        p, q, o = _advance(p, q, o, w, kt, vt)
        y_ptrs += BC
        kt = k_next
        vt = v_next
    _store_state(s_out_ptr + lane, p, q, o, mask, BC)
    if SAVE:  # slot T: the final state, where the backward's reverse scan starts
        _store_state(sc_ptrs, p, q, o, mask, BC)
    if CHECK:
        tl.store(bad_ptr + tl.program_id(0) * tl.num_programs(1) + tl.program_id(1), tl.max(bad, axis=0))


@triton.jit
def wkv_backward_kernel(
    w_ptr, u_ptr, k_ptr, v_ptr, gy_ptr, s0_ptr, gs_ptr, states_ptr,
    gk_ptr, gv_ptr, gw_ptr, gu_ptr, gs0_ptr,
    T, BC, C, END, STATES_END,
    HAS_STATE: tl.constexpr, HAS_GY: tl.constexpr, HAS_GS: tl.constexpr, RECOMPUTE: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    offs_c, mask, lane = _lanes(C, BLOCK_C)
    w = tl.load(w_ptr + offs_c, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(u_ptr + offs_c, mask=mask, other=0.0).to(tl.float32)
    p, q, o = _initial_state(s0_ptr, lane, mask, BC, HAS_STATE, BLOCK_C)
    o_first = o

    if RECOMPUTE:
        # Phase 1: the forward scan again, keeping the state before every token.
        k_ptrs = k_ptr + lane
        v_ptrs = v_ptr + lane
        sc_ptrs = states_ptr + lane
        kt, vt = _load_kv(k_ptrs, v_ptrs, mask)
        for t in range(T):
            k_ptrs += BC
            v_ptrs += BC
            more = mask & (offs_c * 0 + t + 1 < T)
            k_next, v_next = _load_kv(k_ptrs, v_ptrs, more)
            _store_state(sc_ptrs, p, q, o, mask, BC)
            sc_ptrs += 3 * BC
            p, q, o = _advance(p, q, o, w, kt, vt)
            kt = k_next
            vt = v_next
        r = o
    else:
        # the forward saved slot T, the final state
        r = tl.load(states_ptr + lane + STATES_END + 5 * BC, mask=mask, other=0.0)

    # Phase 2: the reverse scan. ga, gb = dL/da_t, dL/db_t as (ga, gb) e^{-r}.
    if HAS_GS:
        ga = tl.load(gs_ptr + lane, mask=mask, other=0.0).to(tl.float32)
        gb = tl.load(gs_ptr + BC + lane, mask=mask, other=0.0).to(tl.float32)
    else:
        ga = tl.zeros([BLOCK_C], dtype=tl.float32)
        gb = tl.zeros([BLOCK_C], dtype=tl.float32)
    gw = tl.zeros([BLOCK_C], dtype=tl.float32)
    gu = tl.zeros([BLOCK_C], dtype=tl.float32)
    # pointers to the last token (END = (T - 1) B C, STATES_END = 3 END: int64 when large); the stores to dk, dv
    # step back before each token, the prefetching loads after
    k_ptrs = k_ptr + lane + END
    v_ptrs = v_ptr + lane + END
    gy_ptrs = gy_ptr + lane + END
    gk_ptrs = gk_ptr + lane + END + BC
    gv_ptrs = gv_ptr + lane + END + BC
    sc_ptrs = states_ptr + lane + STATES_END
    kt, vt = _load_kv(k_ptrs, v_ptrs, mask)
    pt = tl.load(sc_ptrs, mask=mask, other=0.0)
    qt = tl.load(sc_ptrs + BC, mask=mask, other=0.0)
    ot = tl.load(sc_ptrs + 2 * BC, mask=mask, other=0.0)
    if HAS_GY:
        gyt = tl.load(gy_ptrs, mask=mask, other=0.0).to(tl.float32)
    else:
        gyt = tl.zeros([BLOCK_C], dtype=tl.float32)
    for t in range(T):
        gk_ptrs -= BC
        gv_ptrs -= BC
        more = mask & (offs_c * 0 + t + 1 < T)
        k_ptrs -= BC
        v_ptrs -= BC
        sc_ptrs -= 3 * BC
        k_next, v_next = _load_kv(k_ptrs, v_ptrs, more)
        p_next = tl.load(sc_ptrs, mask=more, other=0.0)
        q_next = tl.load(sc_ptrs + BC, mask=more, other=0.0)
        o_next = tl.load(sc_ptrs + 2 * BC, mask=more, other=0.0)
        if HAS_GY:
            gy_ptrs -= BC
            gy_next = tl.load(gy_ptrs, mask=more, other=0.0).to(tl.float32)
        else:
            gy_next = gyt
        uk = u + kt
        m = tl.maximum(ot, uk)
        a = tl.exp(ot - m)
        b = tl.exp(uk - m)
        den = a * qt + b
        yt = (a * pt + b * vt) / den
        g = gyt / den
        gvd = g * b
        gkd = gvd * (vt - yt)
        gu += gkd
        e = tl.exp(kt - r)
        tl.store(gv_ptrs, (gvd + ga * e).to(gv_ptr.dtype.element_ty), mask=mask)
        tl.store(gk_ptrs, (gkd + e * (ga * vt + gb)).to(gk_ptr.dtype.element_ty), mask=mask)
        gw += tl.exp(w + ot - r) * (ga * pt + gb * qt)
        r_new = tl.minimum(m, r - w)
        s_out = tl.exp(r_new - m) * g
        s_dec = tl.exp(w - r + r_new)
        ga = s_out + ga * s_dec
        gb = gb * s_dec - s_out * yt
        r = r_new
        kt = k_next
        vt = v_next
        pt = p_next
        qt = q_next
        ot = o_next
        gyt = gy_next
    tl.store(gw_ptr + lane, gw, mask=mask)
    tl.store(gu_ptr + lane, gu, mask=mask)
    scale = tl.exp(o_first - r)
    tl.store(gs0_ptr + lane, ga * scale, mask=mask)
    tl.store(gs0_ptr + BC + lane, gb * scale, mask=mask)
    tl.store(gs0_ptr + 2 * BC + lane, tl.zeros([BLOCK_C], dtype=tl.float32), mask=mask)


def grid(B: int, C: int, block_c: int) -> tuple[int, int]:
    return (B, triton.cdiv(C, block_c))
