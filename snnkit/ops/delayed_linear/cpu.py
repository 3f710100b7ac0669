"""The torch path of the tap-sparse convolution (see ``taps.py``), forward and hand-written backward::

    forward   y[t, b, j]  = sum_i sum_m c_ji(m) x[t - s_ji - m, b, i]                 (x[t < 0] = 0, t < T)
    backward  dx[t, b, i] = sum_j sum_m c_ji(m) dy[t + s_ji + m, b, j]                 (dy[t >= T] = 0)
              dc_ji(m)    = sum_t sum_b dy[t, b, j] x[t - s_ji - m, b, i]

Two ways to run it, chosen by :func:`use_sparse`:

- sparse: group the taps by delay ``d = s + m``; each group is a sparse ``[C_out, C_in]`` matrix ``A_d`` (CSR) and
  ``y[d:] += x[:T-d] A_d^T``. Cost ``T B C_out C_in W`` multiply-adds instead of the dense ``... D``; ``dx`` uses
  ``A_d^T`` and ``dc`` the products sampled at ``A_d``'s pattern (``torch.sparse.sampled_addmm``).
- dense: scatter the taps into the ``[C_out, C_in, D]`` kernel and call ``conv1d`` (and its two gradients): dense
  GEMMs run so many more multiply-adds per second that on a CPU they win unless the window is a small fraction of
  ``max_delay`` (see :data:`SPARSE_MAX_WIDTH_FRACTION`).

Both compute in float32 (float64 for float64 inputs); no autograd graph (``function.py`` wraps them). Plain torch
operations, so they also run on CUDA tensors: ``backend="auto"`` sends wide windows there (cuDNN's dense kernels).
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["use_sparse", "tap_conv_forward", "tap_conv_backward", "SPARSE_MAX_WIDTH_FRACTION", "COLUMN_CHUNK"]

#: The sparse way runs when the window is at most this fraction of max_delay: one CPU core runs sparse CSR products
#: about 8-16x fewer multiply-adds per second than conv1d's dense GEMMs, so at max_delay 25 or 31 only integer
#: delays (W = 1: 1.6x to 4.8x faster than dense in scripts/bench_delay.py) pay; 3 taps were 0.8x to 1.7x.
SPARSE_MAX_WIDTH_FRACTION = 1 / 16


#: Columns (time steps x batch) per sparse product: keeps the dense operand's slice (C_in x 2048 floats) in cache
#: (1.3x to 2x faster than whole rows at batch 256 on one CPU core).
COLUMN_CHUNK = 2048


def _shifted_products(A: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, src_start: int, dst_start: int,
                      n: int) -> None:
    """``dst[:, dst_start : dst_start + n] += A @ src[:, src_start : src_start + n]``, chunked over columns."""
    for c0 in range(0, n, COLUMN_CHUNK):
        c1 = min(n, c0 + COLUMN_CHUNK)
        dst[:, dst_start + c0: dst_start + c1].add_(torch.sparse.mm(A, src[:, src_start + c0: src_start + c1]))


def use_sparse(width: int, max_delay: int) -> bool:
    return width <= SPARSE_MAX_WIDTH_FRACTION * max_delay


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _delays(start: torch.Tensor, width: int) -> torch.Tensor:
    """The delay of every tap, ``[C_out, C_in, W]`` int64."""
    return start.long().unsqueeze(-1) + torch.arange(width, device=start.device)


def _by_delay(c: torch.Tensor, start: torch.Tensor, T: int, transpose: bool):
    """Yield ``(d, A_d, taps)``: for each delay d < T with taps, the CSR matrix of its coefficients (``[C_out, C_in]``,
    or ``[C_in, C_out]`` when ``transpose``) and the flat indices of those taps in ``c``."""
    W = c.shape[-1]
    if transpose:
        c, start = c.transpose(0, 1), start.t()
    n_rows, n_cols = c.shape[:2]
    flat = torch.arange(c.numel(), device=c.device).view(c.shape)
    if transpose:
        flat = flat.transpose(0, 1)
    flat = flat.reshape(-1)  # index into the original c of each tap, in (row, col, m) order
    d = _delays(start, W).reshape(-1)
    # A stable sort by delay alone keeps the (row, col) order, so each delay's taps are its CSR arrays in order;
    # a narrow integer key sorts faster (radix sort).
    key = d.to(torch.int16 if int(start.max()) + W < 2**15 else torch.int32) if d.numel() else d
    d_sorted, order = torch.sort(key, stable=True)
    # index_select, not advanced indexing: several times faster on CPU for these flat gathers.
    rows = torch.arange(n_rows, dtype=torch.int32, device=c.device).repeat_interleave(n_cols * W)
    cols = torch.arange(n_cols, dtype=torch.int32, device=c.device).repeat_interleave(W).repeat(n_rows)
    rows, cols = rows.index_select(0, order), cols.index_select(0, order).long()
    vals, taps = c.reshape(-1).index_select(0, order), flat.index_select(0, order)
    n_delays = int(d_sorted[-1]) + 1 if d.numel() else 0
    # Row pointers of every delay at once: counts per (delay, row), cumulated.
    counts = torch.bincount(d_sorted.int() * n_rows + rows, minlength=n_delays * n_rows).view(n_delays, n_rows)
    crow = torch.cat([counts.new_zeros(n_delays, 1), counts.cumsum(1)], 1)
    bounds = [0] + counts.sum(1).cumsum(0).tolist()
    for delay in range(min(n_delays, T)):
        lo, hi = bounds[delay], bounds[delay + 1]
        if lo == hi:
            continue
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the operations used here are tested
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            A = torch.sparse_csr_tensor(crow[delay], cols[lo:hi], vals[lo:hi], (n_rows, n_cols),
                                        check_invariants=False)
        yield delay, A, taps[lo:hi]


def _kernel_index(start: torch.Tensor, width: int, max_delay: int) -> torch.Tensor:
    """Where each tap sits in conv1d's kernel: a cross-correlation multiplies index k' with ``x[t + k' - (D-1)]``,
    so delay d is index ``D - 1 - d``."""
    return (max_delay - 1) - _delays(start, width)


def _dense_kernel(c: torch.Tensor, start: torch.Tensor, max_delay: int) -> torch.Tensor:
    """The taps scattered into conv1d's ``[C_out, C_in, D]`` kernel."""
    kernel = c.new_zeros(*c.shape[:2], max_delay)
    return kernel.scatter_(-1, _kernel_index(start, c.shape[-1], max_delay), c)


def tap_conv_forward(x: torch.Tensor, c: torch.Tensor, start: torch.Tensor, max_delay: int) -> torch.Tensor:
    """``y [T, B, C_out]`` in the compute dtype (see the module docstring)."""
    T, B, C_in = x.shape
    dt = compute_dtype(x.dtype)
    x, c = x.to(dt), c.to(dt)
    if not use_sparse(c.shape[-1], max_delay):
        xc = F.pad(x.permute(1, 2, 0), (max_delay - 1, 0))
        return F.conv1d(xc, _dense_kernel(c, start, max_delay)).permute(2, 0, 1)
    xt = x.reshape(T * B, C_in).t().contiguous()  # [C_in, T B]: one row per input, time-major columns
    yt = x.new_zeros(c.shape[0], T * B)
    for d, A, _ in _by_delay(c, start, T, transpose=False):
        _shifted_products(A, xt, yt, 0, d * B, (T - d) * B)
    return yt.t().reshape(T, B, -1)


def tap_conv_backward(dy: torch.Tensor, x: Optional[torch.Tensor], c: Optional[torch.Tensor], start: torch.Tensor,
                      max_delay: int, c_shape: torch.Size) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``(dx, dc)`` in the compute dtype: ``dx`` when the coefficients ``c`` are given, ``dc`` when ``x`` is."""
    T, B, C_out = dy.shape
    C_in, width = c_shape[1], c_shape[2]
    need_x, need_c = c is not None, x is not None
    dt = compute_dtype(dy.dtype)
    dy = dy.to(dt)
    x = None if x is None else x.to(dt)
    # dc needs only the taps' pattern, not their values.
    c = dy.new_zeros(c_shape) if c is None else c.to(dt)
    dx = dc = None
    if not use_sparse(width, max_delay):
        dyc = dy.permute(1, 2, 0)
        kernel = _dense_kernel(c, start, max_delay)
        if need_c:
            # One call for both gradients: the same kernels autograd uses for conv1d (torch.nn.grad's helpers
            # run the weight gradient as a slower grouped convolution).
            xc = F.pad(x.permute(1, 2, 0), (max_delay - 1, 0))
            dxc, dk, _ = torch.ops.aten.convolution_backward(dyc, xc, kernel, None, [1], [0], [1], False, [0], 1,
                                                             [need_x, True, False])
            dc = dk.gather(-1, _kernel_index(start, width, max_delay))
        else:
            dxc = torch.nn.grad.conv1d_input((B, C_in, T + max_delay - 1), kernel, dyc)
        if need_x:
            dx = dxc[:, :, max_delay - 1:].permute(2, 0, 1)
        return dx, dc
    dyt = dy.reshape(T * B, C_out).t().contiguous()  # [C_out, T B]
    if need_x:
        dxt = dy.new_zeros(C_in, T * B)
        for d, At, _ in _by_delay(c, start, T, transpose=True):
            _shifted_products(At, dyt, dxt, d * B, 0, (T - d) * B)
        dx = dxt.t().reshape(T, B, C_in)
    if need_c:
        xt = x.reshape(T * B, C_in).t().contiguous()
        dc_flat = dy.new_zeros(c.numel())
        for d, A, taps in _by_delay(c, start, T, transpose=False):
            # The products dy[t] x[t - d]^T sampled where A_d has taps (values in A_d's order), summed over column
            # chunks as in _shifted_products.
            n = (T - d) * B
            acc = None
            for c0 in range(0, n, COLUMN_CHUNK):
                c1 = min(n, c0 + COLUMN_CHUNK)
                part = torch.sparse.sampled_addmm(A, dyt[:, d * B + c0: d * B + c1], xt[:, c0:c1].t(),
                                                  beta=0.0).values()
                acc = part if acc is None else acc.add_(part)
            dc_flat[taps] = acc
        dc = dc_flat.view(c_shape)
    return dx, dc
