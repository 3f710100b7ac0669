"""Tap-sparse delayed-linear kernels: each synapse gathers only the taps inside its Gaussian support.

The op (``snnkit/ops/delayed_linear/``) reduces every call to coefficients ``c [C_out, C_in, W]`` and window starts
``s [C_out, C_in]`` (int32) over the W consecutive delays ``s_ji .. s_ji + W - 1`` (``taps.py`` there: W = 1 for
integer delays, 3 at sigma = 0.23)::

    forward   y[t, b, j]  = sum_i sum_m c[j, i, m] x[i, t - s_ji - m, b]          (x before t = 0 is zero)
    grad x    dx[t, b, i] = sum_j sum_m c[j, i, m] dy[j, t + s_ji + m, b]         (dy from t = T on is zero)
    grad c    dc[j, i, m] = sum_t sum_b dy[j, t, b] x[i, t - s_ji - m, b]

so the work is ``T B C_out C_in W`` gathered multiply-adds, against ``T B C_out C_in max_delay`` for a dense
convolution of the ``max_delay``-wide kernel (what ``dcls`` does). Inputs are read channel-major
(``x [C_in, T, B]``, ``dy [C_out, T, B]``, laid out by the launchers) so that a tile's rows are contiguous runs
over the batch; every gather of one synapse and tap is one coalesced row. Accumulation in float32; row offsets in
int64. No autograd and no validation here (``snnkit/ops/delayed_linear/launch.py`` launches them). Written for
triton >= 3.2.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _gather_step(src_ptr, c_ptr, s_ptr, out_ptr, T, B, C_in, C_out, W,
                 BLOCK_L: tl.constexpr, BLOCK_B: tl.constexpr, FORWARD: tl.constexpr):
    """The body of the forward (``FORWARD``) and input-gradient kernels, which differ only in direction: one time step
    t (program axis 0), BLOCK_L lanes (axis 1: outputs j forward, inputs i backward) and BLOCK_B batch items (axis 2)
    per program. Each lane sums over the other side's channels ``ch`` and the W taps m of synapse ``(j, i)``, reading
    the channel-major ``src [C, T, B]`` at ``t - s - m`` forward (x; before 0 is the causal zero padding) or at
    ``t + s + m`` backward (dy; from T on the contribution was dropped), and writes step t of the time-first
    ``out [T, B, C_lanes]``."""
    t = tl.program_id(0)
    lane = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    b = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    if FORWARD:
        n_lanes = C_out
        n_ch = C_in
    else:
        n_lanes = C_in
        n_ch = C_out
    lane_ok = lane < n_lanes
    b_ok = b < B
    acc = tl.zeros([BLOCK_L, BLOCK_B], dtype=tl.float32)
    for ch in range(0, n_ch):
        if FORWARD:
            syn = lane * C_in + ch
        else:
            syn = ch * C_in + lane
        s = tl.load(s_ptr + syn, mask=lane_ok, other=0)
        for m in range(0, W):
            if FORWARD:
                step = t - s - m  # < T always
                ok = lane_ok & (step >= 0)
            else:
                step = t + s + m  # >= 0 always
                ok = lane_ok & (step < T)
            coef = tl.load(c_ptr + syn * W + m, mask=lane_ok, other=0.0)
            row = (ch * T + step).to(tl.int64) * B
            v = tl.load(src_ptr + row[:, None] + b[None, :], mask=ok[:, None] & b_ok[None, :], other=0.0)
            acc += coef[:, None] * v.to(tl.float32)
    out = (t * B + b[None, :]).to(tl.int64) * n_lanes + lane[:, None]
    tl.store(out_ptr + out, acc.to(out_ptr.dtype.element_ty), mask=lane_ok[:, None] & b_ok[None, :])


@triton.jit
def tap_conv_forward_kernel(x_ptr, c_ptr, s_ptr, y_ptr, T, B, C_in, C_out, W,
                            BLOCK_J: tl.constexpr, BLOCK_B: tl.constexpr):
    """One time step t, BLOCK_J outputs and BLOCK_B batch items per program; writes ``y [T, B, C_out]``."""
    _gather_step(x_ptr, c_ptr, s_ptr, y_ptr, T, B, C_in, C_out, W, BLOCK_J, BLOCK_B, True)


@triton.jit
def tap_conv_grad_x_kernel(dy_ptr, c_ptr, s_ptr, dx_ptr, T, B, C_in, C_out, W,
                           BLOCK_I: tl.constexpr, BLOCK_B: tl.constexpr):
    """One time step t, BLOCK_I inputs and BLOCK_B batch items per program; writes ``dx [T, B, C_in]``."""
    _gather_step(dy_ptr, c_ptr, s_ptr, dx_ptr, T, B, C_in, C_out, W, BLOCK_I, BLOCK_B, False)


@triton.jit
def tap_conv_grad_c_kernel(dy_ptr, x_ptr, s_ptr, dc_ptr, T, B, C_in, W,
                           BLOCK_I: tl.constexpr, BLOCK_B: tl.constexpr):
    """One output j, BLOCK_I inputs and one tap m per program: a dot product over (t, b) per synapse."""
    j = tl.program_id(0)
    i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    m = tl.program_id(2)
    i_ok = i < C_in
    syn = j * C_in + i
    s = tl.load(s_ptr + syn, mask=i_ok, other=0)
    acc = tl.zeros([BLOCK_I, BLOCK_B], dtype=tl.float32)
    for t in range(0, T):
        src = t - s - m
        ok = i_ok & (src >= 0)
        x_row = (i * T + src).to(tl.int64) * B
        g_row = (j * T + t).to(tl.int64) * B
        for b0 in range(0, B, BLOCK_B):
            b = b0 + tl.arange(0, BLOCK_B)
            b_ok = b < B
            g = tl.load(dy_ptr + g_row + b, mask=b_ok, other=0.0).to(tl.float32)
            xv = tl.load(x_ptr + x_row[:, None] + b[None, :], mask=ok[:, None] & b_ok[None, :], other=0.0)
            acc += g[None, :] * xv.to(tl.float32)
    tl.store(dc_ptr + syn * W + m, tl.sum(acc, axis=1), mask=i_ok)
