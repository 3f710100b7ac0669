"""The ``torch.autograd.Function`` of the tap-sparse convolution (``taps.py``): one autograd node for the whole
sequence, dispatched to the Triton kernels (``launch.py``) or the torch path (``cpu.py``).

It saves only what the backward needs: ``x`` when the coefficients need a gradient, the coefficients ``c`` when
``x`` needs one, and the int32 window starts. The small ``[C_out, C_in, W]`` step from (weight, positions, sigma) to
``c`` stays in autograd (``taps.tap_coefficients``), so the positions' gradient is derived, not hand-written.
"""

from __future__ import annotations

import torch

from . import cpu, launch

__all__ = ["TapConv"]


class TapConv(torch.autograd.Function):
    """``y[t, b, j] = sum_i sum_m c[j, i, m] x[t - start[j, i] - m, b, i]`` (``cpu.py`` has the backward)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor, start: torch.Tensor, max_delay: int,
                use_triton: bool) -> torch.Tensor:
        need_x, need_c = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if use_triton:
            y = launch.tap_conv_forward(x, c, start)
        else:
            y = cpu.tap_conv_forward(x, c, start, max_delay)
        # x itself, not the kernels' channel-major copy: x is usually alive anyway, the copy would add its size.
        ctx.save_for_backward(x if need_c else None, c if need_x else None, start)
        ctx.dtypes = (x.dtype, c.dtype)
        ctx.c_shape = c.shape
        ctx.max_delay, ctx.use_triton = max_delay, use_triton
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, c, start = ctx.saved_tensors
        if ctx.use_triton:
            xt = None if x is None else launch.channel_major(x)
            dx, dc = launch.tap_conv_backward(dy, xt, c, start, ctx.c_shape)
        else:
            dx, dc = cpu.tap_conv_backward(dy, x, c, start, ctx.max_delay, ctx.c_shape)
        dx = None if dx is None else dx.to(ctx.dtypes[0])
        dc = None if dc is None else dc.to(ctx.dtypes[1])
        return dx, dc, None, None, None
