"""The tap-sparse convolution (``taps.py``) as ``torch.library`` custom ops with fake implementations, and the
``torch.autograd.Function`` over them: one autograd node for the whole sequence, dispatched to the Triton kernels
(``launch.py``) or the torch path (``cpu.py``). The fakes let ``torch.compile(fullgraph=True)`` trace through the op
(the custom ops are opaque to it, as the LIF op's are).

The Function saves only what the backward needs: ``x`` when the coefficients need a gradient, the coefficients
``c`` when ``x`` needs one, and the int32 window starts. The small ``[C_out, C_in, W]`` step from (weight,
positions, sigma) to ``c`` stays in autograd (``taps.tap_coefficients``), so the positions' gradient is derived,
not hand-written.
"""

from __future__ import annotations

from typing import Optional

import torch

from . import cpu, launch

__all__ = ["TapConv"]


@torch.library.custom_op("snnkit::delayed_linear_forward", mutates_args=())
def _forward_op(x: torch.Tensor, c: torch.Tensor, start: torch.Tensor, max_delay: int,
                use_triton: bool) -> torch.Tensor:
    x, c, start = x.contiguous(), c.contiguous(), start.contiguous()
    if use_triton:
        return launch.tap_conv_forward(x, c, start)
    return cpu.tap_conv_forward(x, c, start, max_delay).to(x.dtype).contiguous()


@_forward_op.register_fake
def _(x, c, start, max_delay, use_triton):
    return x.new_empty(x.shape[0], x.shape[1], c.shape[0])


@torch.library.custom_op("snnkit::delayed_linear_backward", mutates_args=())
def _backward_op(dy: torch.Tensor, x: Optional[torch.Tensor], c: Optional[torch.Tensor], start: torch.Tensor,
                 c_shape: list[int], c_dtype: torch.dtype, max_delay: int,
                 use_triton: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dx in dy's dtype, dc in c_dtype)``; an empty tensor stands for a gradient not asked for (``dx`` needs
    ``c``, ``dc`` needs ``x``)."""
    dy = dy.contiguous()
    shape = torch.Size(c_shape)
    if use_triton:
        dx, dc = launch.tap_conv_backward(dy, None if x is None else launch.channel_major(x), c, start, shape)
    else:
        dx, dc = cpu.tap_conv_backward(dy, x, c, start, max_delay, shape)
    dx = dy.new_empty(0) if dx is None else dx.to(dy.dtype).contiguous()
    dc = dy.new_empty(0, dtype=c_dtype) if dc is None else dc.to(c_dtype).contiguous()
    return dx, dc


@_backward_op.register_fake
def _(dy, x, c, start, c_shape, c_dtype, max_delay, use_triton):
    T, B, _ = dy.shape
    dx = dy.new_empty(T, B, c_shape[1]) if c is not None else dy.new_empty(0)
    dc = dy.new_empty(c_shape, dtype=c_dtype) if x is not None else dy.new_empty(0, dtype=c_dtype)
    return dx, dc


class TapConv(torch.autograd.Function):
    """``y[t, b, j] = sum_i sum_m c[j, i, m] x[t - start[j, i] - m, b, i]`` (``cpu.py`` has the backward)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor, start: torch.Tensor, max_delay: int,
                use_triton: bool) -> torch.Tensor:
        need_x, need_c = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        y = torch.ops.snnkit.delayed_linear_forward(x, c, start, max_delay, use_triton)
        # x itself, not the kernels' channel-major copy: x is usually alive anyway, the copy would add its size.
        ctx.save_for_backward(x if need_c else None, c if need_x else None, start)
        ctx.c_shape, ctx.c_dtype = list(c.shape), c.dtype
        ctx.max_delay, ctx.use_triton = max_delay, use_triton
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, c, start = ctx.saved_tensors
        dx, dc = torch.ops.snnkit.delayed_linear_backward(dy, x, c, start, ctx.c_shape, ctx.c_dtype, ctx.max_delay,
                                                          ctx.use_triton)
        return (dx if c is not None else None), (dc if x is not None else None), None, None, None
