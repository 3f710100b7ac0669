"""The LIF op's dispatch: its settings (:class:`LIFConfig`), the ``torch.library`` custom ops with their fakes, the
finiteness checks, and the ``torch.autograd.Function`` that makes the whole sequence one autograd node.

One ``torch.autograd.Function`` covers all T steps: the forward is one scan (the Triton kernel on CUDA; on CPU the
fused chunks of ``fused_cpu.py`` or the loop of ``cpu.py``, see :func:`_fused`) and the backward one reverse scan, so autograd records one node per layer instead of
~10 per time step. Both scans are registered as ``torch.library`` custom ops with fake (meta) implementations, so
``torch.compile`` traces through the op without graph breaks (SpikingJelly 2.0's approach).

Finiteness checks (``check``): NaN or inf in ``x`` or ``v0`` would silently give no spikes and NaN gradients.
"sync" raises ``ValueError`` at once (on CUDA this reads a flag back to the host: one synchronisation per call);
"async" queues ``torch._assert_async`` on the device, so the CUDA path never waits for the GPU and a bad input stops
the program at its next synchronisation with a device-side assert; "off" checks nothing. The Triton forward computes
the flag for ``x`` in registers (no extra pass over memory); the CPU loop checks ``x`` with one reduction first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ...surrogate import PDSG_ID, pdsg_sigma
from ...validation import check_finite
from . import cpu, fused_cpu
from .launch import triton_backward, triton_forward

__all__ = ["LIFConfig", "LIFMultistep", "CHECKS", "CPU_PATHS"]

CHECKS = ("auto", "sync", "async", "off")
#: How the custom ops run when the Triton kernels do not: "auto" (the fused chunks where they pay, see
#: :func:`snnkit.ops.lif.fused_cpu.pays`), "fused" (whenever the fused path can run), "loop" (always ``cpu.py``).
CPU_PATHS = ("auto", "fused", "loop")


@dataclass(frozen=True)
class LIFConfig:
    """The non-tensor settings of one call of the op (validated by :func:`snnkit.ops.lif_multistep`).

    Attributes:
        inv_tau: ``1 / tau`` for a float tau (ignored when tau is a tensor).
        v_threshold: firing threshold; ``None`` for the non-spiking mode (charge only).
        v_reset: hard-reset potential (also the resting potential); ``None`` for soft reset (rest at 0).
        decay_input, detach_reset, store_v_seq: as in :func:`snnkit.ops.lif_multistep`.
        surrogate_id, alpha: the surrogate's table entry and parameter (``snnkit.surrogate.SURROGATE_TABLE``).
        compact: save float16 ``h - v_threshold`` instead of float32 ``h`` (spiking mode only).
        save: the forward keeps what the backward needs.
        tau_grad: tau is a tensor that requires a gradient.
        use_triton: run the Triton kernels (else the CPU paths, on whatever device).
        check: "sync", "async" or "off" (resolved from "auto").
        cpu_path: when the Triton kernels do not run: "auto", "fused" or "loop" (see :data:`CPU_PATHS`).
    """

    inv_tau: float
    v_threshold: Optional[float]
    v_reset: Optional[float]
    decay_input: bool
    detach_reset: bool
    surrogate_id: int
    alpha: float
    store_v_seq: bool
    compact: bool
    save: bool
    tau_grad: bool
    use_triton: bool
    check: str
    cpu_path: str = "auto"


def _v_last_dtype(x: torch.Tensor, v0: Optional[torch.Tensor]) -> torch.dtype:
    # The potentials (v_last or v_seq) take v0's dtype when given. A float32 state handed in stays float32 under bf16 inputs: streaming must not round the state every chunk.
    return v0.dtype if v0 is not None else x.dtype


def _contig(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.contiguous()


def _raise_or_assert(ok: torch.Tensor, name: str, check: str) -> None:
    """Turn the device boolean ``ok`` into an error as ``check`` says (see the module docstring)."""
    message = f"{name} contains NaN or inf; lif_multistep expects finite inputs"
    if check == "sync":
        if not bool(ok):
            raise ValueError(message)
    elif check == "async":
        torch._assert_async(ok, message)


def _check_inputs(x: torch.Tensor, v0: Optional[torch.Tensor], bad: Optional[torch.Tensor], check: str) -> None:
    if check == "off":
        return
    if bad is not None:  # the Triton forward's per-program flags for x
        _raise_or_assert(bad.max() == 0, "x", check)
    elif check == "sync":
        check_finite("x", x)
    else:
        _raise_or_assert(torch.isfinite(x).all(), "x", check)
    if v0 is not None:
        _raise_or_assert(torch.isfinite(v0).all(), "v0", check)


def _fused(cpu_path: str, shape, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the CPU branch of the custom ops runs ``fused_cpu.py`` for an input ``x`` of this shape, dtype and
    device (decided at run time, on the real tensors: under ``torch.compile`` the op's fake never gets here)."""
    if cpu_path == "loop":
        return False
    if cpu_path == "fused":
        return fused_cpu.supports(shape, dtype, device) and fused_cpu.available()
    return fused_cpu.pays(shape, dtype, device)


def _k(tau_t: Optional[torch.Tensor], inv_tau: float, dtype: torch.dtype):
    return (1 / tau_t.to(cpu.state_dtype(dtype))) if tau_t is not None else inv_tau


@torch.library.custom_op("snnkit::lif_forward", mutates_args=())
def _lif_forward_op(
    x: torch.Tensor, v0: Optional[torch.Tensor], tau_t: Optional[torch.Tensor], inv_tau: float,
    v_threshold: Optional[float], v_reset: Optional[float], decay_input: bool, store_v_seq: bool,
    compact: bool, save: bool, use_triton: bool, check: str, cpu_path: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, v0, tau_t = x.contiguous(), _contig(v0), _contig(tau_t)
    if use_triton:
        out, v_out, saved, bad = triton_forward(x, v0, tau_t, inv_tau, v_threshold, v_reset, decay_input,
                                                store_v_seq, compact, save, _v_last_dtype(x, v0))
        _check_inputs(x, v0, bad, check)
        return out, v_out, saved
    _check_inputs(x, v0, None, check)
    args = (x, v0, _k(tau_t, inv_tau, x.dtype), v_threshold, v_reset, decay_input, store_v_seq, compact, save)
    result = None
    if _fused(cpu_path, x.shape, x.dtype, x.device):
        try:
            result = fused_cpu.lif_forward_fused(*args)
        except fused_cpu.FusedUnavailable:  # its compile failed (warned once): the loop below
            pass
    out, v_out, saved = result if result is not None else cpu.lif_forward_cpu(*args)
    return out, v_out.to(_v_last_dtype(x, v0)).contiguous(), saved


@_lif_forward_op.register_fake
def _(x, v0, tau_t, inv_tau, v_threshold, v_reset, decay_input, store_v_seq, compact, save, use_triton, check,
      cpu_path="auto"):
    compact = compact and v_threshold is not None
    saved_dtype = torch.float16 if compact else cpu.state_dtype(x.dtype)
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        x.new_empty(x.shape if store_v_seq else x.shape[1:], dtype=_v_last_dtype(x, v0)),
        x.new_empty(x.shape if save else (0,), dtype=saved_dtype),
    )


def _uniform(g: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], bool]:
    """A gradient that is one value broadcast everywhere (stride 0, as ``out.sum()`` gives) as that one element."""
    if g is not None and g.numel() > 1 and all(st == 0 for st in g.stride()):
        return g.as_strided((1,), (1,)), True
    return g, False


def _pdsg_inv_sigma(saved: torch.Tensor, compact: bool, x_dtype: torch.dtype) -> torch.Tensor:
    """PDSG's ``1 / sigma [T, C]`` from what the forward saved: ``h``, or in compact mode ``u = h - v_threshold``
    (a standard deviation does not see the shift). Computed here once for the CPU loop and the kernel alike."""
    sigma = pdsg_sigma(saved.float() if compact else saved)
    return (1.0 / sigma).to(cpu.state_dtype(x_dtype)).contiguous()


@torch.library.custom_op("snnkit::lif_backward", mutates_args=())
def _lif_backward_op(
    grad_out: Optional[torch.Tensor], grad_v: Optional[torch.Tensor], saved: torch.Tensor, v0: Optional[torch.Tensor],
    tau_t: Optional[torch.Tensor], inv_tau: float, v_threshold: Optional[float], v_reset: Optional[float],
    decay_input: bool, detach_reset: bool, surrogate_id: int, alpha: float, store_v_seq: bool, compact: bool,
    tau_grad: bool, x_dtype: torch.dtype, shape: list[int], use_triton: bool, uniform_out: bool, uniform_v: bool,
    v0_grad: bool, cpu_path: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # uniform_out / uniform_v: that gradient arrives as its single broadcast value (see _uniform).
    grad_out, grad_v, v0, tau_t = _contig(grad_out), _contig(grad_v), _contig(v0), _contig(tau_t)
    pdsg = surrogate_id == PDSG_ID and v_threshold is not None
    inv_sigma = _pdsg_inv_sigma(saved, compact and v_threshold is not None, x_dtype) if pdsg else None
    if use_triton:
        return triton_backward(grad_out, grad_v, saved, v0, inv_tau, tau_t, v_threshold, v_reset, decay_input,
                               detach_reset, surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype,
                               tuple(shape), uniform_out, uniform_v, v0_grad, inv_sigma=inv_sigma)
    # PDSG (an attack-time surrogate) always takes the loop below: the fused chunks have no per-channel constant.
    if not pdsg and _fused(cpu_path, shape, x_dtype, saved.device):
        try:
            grad_x, grad_v0, grad_k = fused_cpu.lif_backward_fused(
                grad_out, grad_v, saved, v0, _k(tau_t, inv_tau, x_dtype), v_threshold, v_reset, decay_input,
                detach_reset, surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype, tuple(shape),
                uniform_out, uniform_v,
            )
            return grad_x, (grad_v0 if v0_grad else grad_v0.new_empty(0)), grad_k
        except fused_cpu.FusedUnavailable:  # its compile failed (warned once): the loop below
            pass
    if uniform_out:
        grad_out = grad_out.expand(shape)  # a view: the CPU loop reads it step by step, nothing is materialised
    if uniform_v:
        grad_v = grad_v.expand(shape if store_v_seq else shape[1:])
    grad_x, grad_v0, grad_k = cpu.lif_backward_cpu(
        grad_out, grad_v, saved, v0, _k(tau_t, inv_tau, x_dtype), v_threshold, v_reset, decay_input, detach_reset,
        surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype, tuple(shape), inv_sigma=inv_sigma,
    )
    return grad_x, (grad_v0 if v0_grad else grad_v0.new_empty(0)), grad_k


@_lif_backward_op.register_fake
def _(grad_out, grad_v, saved, v0, tau_t, inv_tau, v_threshold, v_reset, decay_input, detach_reset, surrogate_id,
      alpha, store_v_seq, compact, tau_grad, x_dtype, shape, use_triton, uniform_out, uniform_v, v0_grad,
      cpu_path="auto"):
    sdt = cpu.state_dtype(x_dtype)
    return (saved.new_empty(shape, dtype=x_dtype), saved.new_empty(shape[1:] if v0_grad else (0,), dtype=sdt),
            saved.new_empty((), dtype=sdt))


class LIFMultistep(torch.autograd.Function):
    """The whole LIF sequence as one autograd node (forward scan + reverse scan)."""

    @staticmethod
    def forward(ctx, x, v0, tau_t, cfg: LIFConfig):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        out, v_out, saved = torch.ops.snnkit.lif_forward(
            x, v0, tau_t, cfg.inv_tau, cfg.v_threshold, cfg.v_reset, cfg.decay_input, cfg.store_v_seq, cfg.compact,
            cfg.save, cfg.use_triton, cfg.check, cfg.cpu_path,
        )
        ctx.cfg = cfg
        ctx.x_dtype = x.dtype
        ctx.shape = list(x.shape)
        ctx.v0_dtype = None if v0 is None else v0.dtype
        ctx.save_for_backward(saved, v0 if cfg.tau_grad else None, tau_t)
        return out, v_out

    @staticmethod
    def backward(ctx, grad_out, grad_v):  # type: ignore[override]
        cfg: LIFConfig = ctx.cfg
        saved, v0, tau_t = ctx.saved_tensors
        if grad_out is None and grad_v is None:
            return None, None, None, None
        grad_out, uniform_out = _uniform(grad_out)
        grad_v, uniform_v = _uniform(grad_v)
        grad_x, grad_v0, grad_k = torch.ops.snnkit.lif_backward(
            grad_out, grad_v, saved, v0, tau_t, cfg.inv_tau, cfg.v_threshold, cfg.v_reset, cfg.decay_input,
            cfg.detach_reset, cfg.surrogate_id, cfg.alpha, cfg.store_v_seq, cfg.compact, ctx.needs_input_grad[2],
            ctx.x_dtype, ctx.shape, cfg.use_triton, uniform_out, uniform_v, ctx.needs_input_grad[1], cfg.cpu_path,
        )
        gv0 = grad_v0.to(ctx.v0_dtype) if ctx.needs_input_grad[1] else None
        gtau = None
        if ctx.needs_input_grad[2]:
            # dL/dtau = dL/dk * dk/dtau with k = 1/tau.
            gtau = (-grad_k / (tau_t.to(grad_k.dtype) ** 2)).to(tau_t.dtype).reshape(tau_t.shape)
        return grad_x, gv0, gtau, None
