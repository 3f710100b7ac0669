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
def tap_conv_forward_kernel(x_ptr, c_ptr, s_ptr, y_ptr, T, B, C_in, C_out, W,
                            BLOCK_J: tl.constexpr, BLOCK_B: tl.constexpr):
    """One time step t, BLOCK_J outputs and BLOCK_B batch items per program; writes ``y [T, B, C_out]``."""
    t = tl.program_id(0)
    j = tl.program_id(1) * BLOCK_J + tl.arange(0, BLOCK_J)
    b = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    j_ok = j < C_out
    b_ok = b < B
    acc = tl.zeros([BLOCK_J, BLOCK_B], dtype=tl.float32)
    for i in range(0, C_in):
        syn = j * C_in + i
        s = tl.load(s_ptr + syn, mask=j_ok, other=0)
        for m in range(0, W):
            src = t - s - m  # < T always; before 0 is the causal zero padding
            ok = j_ok & (src >= 0)
            coef = tl.load(c_ptr + syn * W + m, mask=j_ok, other=0.0)
            row = (i * T + src).to(tl.int64) * B
            xv = tl.load(x_ptr + row[:, None] + b[None, :], mask=ok[:, None] & b_ok[None, :], other=0.0)
            acc += coef[:, None] * xv.to(tl.float32)
    out = (t * B + b[None, :]).to(tl.int64) * C_out + j[:, None]
    tl.store(y_ptr + out, acc.to(y_ptr.dtype.element_ty), mask=j_ok[:, None] & b_ok[None, :])


@triton.jit
def tap_conv_grad_x_kernel(dy_ptr, c_ptr, s_ptr, dx_ptr, T, B, C_in, C_out, W,
                           BLOCK_I: tl.constexpr, BLOCK_B: tl.constexpr):
    """One time step t, BLOCK_I inputs and BLOCK_B batch items per program; writes ``dx [T, B, C_in]``."""
    t = tl.program_id(0)
    i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    b = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    i_ok = i < C_in
    b_ok = b < B
    acc = tl.zeros([BLOCK_I, BLOCK_B], dtype=tl.float32)
    for j in range(0, C_out):
        syn = j * C_in + i
        s = tl.load(s_ptr + syn, mask=i_ok, other=0)
        for m in range(0, W):
            dst = t + s + m  # the step where this input's contribution arrives; from T on it was dropped
            ok = i_ok & (dst < T)
            coef = tl.load(c_ptr + syn * W + m, mask=i_ok, other=0.0)
            row = (j * T + dst).to(tl.int64) * B
            g = tl.load(dy_ptr + row[:, None] + b[None, :], mask=ok[:, None] & b_ok[None, :], other=0.0)
            acc += coef[:, None] * g.to(tl.float32)
    out = (t * B + b[None, :]).to(tl.int64) * C_in + i[:, None]
    tl.store(dx_ptr + out, acc.to(dx_ptr.dtype.element_ty), mask=i_ok[:, None] & b_ok[None, :])


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
