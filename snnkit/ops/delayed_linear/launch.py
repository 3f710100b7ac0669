"""Triton launchers of the tap-sparse convolution: lay the inputs out channel-major, allocate, launch
``snnkit.kernels.delayed_linear`` (equations there). No autograd, no validation, no host synchronisation."""

from __future__ import annotations

from typing import Optional

import torch

from .._dispatch import load_kernels

__all__ = ["kernels", "channel_major", "tap_conv_forward", "tap_conv_backward", "BLOCK_C", "NUM_WARPS"]

BLOCK_C = 32  # channels per program (outputs in the forward, inputs in the backward)
NUM_WARPS = 4


def kernels():
    """``snnkit.kernels.delayed_linear``, imported on first use so that ``import snnkit`` never imports triton."""
    return load_kernels("delayed_linear")


def _block_b(B: int) -> int:
    return min(64, max(16, 1 << (B - 1).bit_length()))


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def channel_major(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, C]`` -> ``[C, T, B]`` contiguous, the layout the kernels gather rows from."""
    return x.permute(2, 0, 1).contiguous()


def tap_conv_forward(x: torch.Tensor, c: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``y [T, B, C_out]`` in ``x.dtype``."""
    kern = kernels()
    T, B, C_in = x.shape
    C_out, _, W = c.shape
    xt = channel_major(x)
    y = torch.empty(T, B, C_out, dtype=x.dtype, device=x.device)
    bb = _block_b(B)
    kern.tap_conv_forward_kernel[(T, _cdiv(C_out, BLOCK_C), _cdiv(B, bb))](
        xt, c.to(torch.float32).contiguous(), start.contiguous(), y, T, B, C_in, C_out, W,
        BLOCK_J=BLOCK_C, BLOCK_B=bb, num_warps=NUM_WARPS)
    return y


def tap_conv_backward(dy: torch.Tensor, xt: Optional[torch.Tensor], c: Optional[torch.Tensor], start: torch.Tensor,
                      c_shape: torch.Size) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``(dx in dy.dtype, dc in float32)``: ``dx`` when ``c`` is given, ``dc`` when ``xt`` (``channel_major(x)``)
    is."""
    kern = kernels()
    T, B, C_out = dy.shape
    C_in, W = c_shape[1], c_shape[2]
    dyt = channel_major(dy)
    s = start.contiguous()
    bb = _block_b(B)
    dx = dc = None
    if c is not None:
        dx = torch.empty(T, B, C_in, dtype=dy.dtype, device=dy.device)
        kern.tap_conv_grad_x_kernel[(T, _cdiv(C_in, BLOCK_C), _cdiv(B, bb))](
            dyt, c.to(torch.float32).contiguous(), s, dx, T, B, C_in, C_out, W,
            BLOCK_I=BLOCK_C, BLOCK_B=bb, num_warps=NUM_WARPS)
    if xt is not None:
        dc = torch.empty(c_shape, dtype=torch.float32, device=dy.device)
        kern.tap_conv_grad_c_kernel[(C_out, _cdiv(C_in, BLOCK_C), W)](
            dyt, xt, s, dc, T, B, C_in, W,
            BLOCK_I=BLOCK_C, BLOCK_B=bb, num_warps=NUM_WARPS)
    return dx, dc
