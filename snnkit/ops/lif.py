"""``lif_multistep``: a whole LIF sequence as one differentiable op.

One ``torch.autograd.Function`` covers all T steps: the forward is one scan (a fused Triton kernel on CUDA, the
reference loop of ``snnkit/ops/reference.py`` elsewhere) and the backward one reverse scan, so autograd records one
node per layer instead of ~10 per time step. Both scans are registered as ``torch.library`` custom ops with fake
(meta) implementations, so ``torch.compile`` traces through the op without graph breaks (SpikingJelly 2.0's approach).

Equations, saved tensors and the precision of the two storage modes are documented in ``snnkit/ops/reference.py``.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import torch

from ..surrogate import Surrogate, Sigmoid
from . import reference

__all__ = ["lif_multistep", "BACKENDS", "STORAGES"]

BACKENDS = ("auto", "triton", "torch")
STORAGES = ("exact", "compact")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_BLOCK = 1024
_NUM_WARPS = 4


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _kernels():
    try:
        from ..kernels import lif as lif_kernels  # triton is imported here, never at snnkit import time
    except ImportError as e:  # pragma: no cover - triton is a dependency on Linux
        raise RuntimeError(f"backend='triton' needs the triton package ({e}); use backend='torch'") from e
    return lif_kernels


# --------------------------------------------------------------------------------------------- triton launchers
def _triton_forward(x, v0, inv_tau, tau_t, v_threshold, v_reset, decay_input, store_v_seq, compact, save):
    kern = _kernels()
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    n = x2.shape[1]
    spikes = torch.empty_like(x)
    v_out = torch.empty_like(x) if store_v_seq else torch.empty(x.shape[1:], dtype=_v_last_dtype(x, v0),
                                                                    device=x.device)
    saved = torch.empty(x.shape if save else (0,), dtype=torch.float16 if compact else torch.float32, device=x.device)
    grid = kern.grid_size(n, _BLOCK)
    bad = torch.zeros(grid, dtype=torch.int32, device=x.device)
    kern.lif_forward_kernel[(grid,)](
        x2, v0 if v0 is not None else x2, tau_t if tau_t is not None else x2, spikes, v_out, saved if save else x2,
        bad, T, n, inv_tau, v_threshold, 0.0 if v_reset is None else v_reset,
        HAS_V0=v0 is not None, TAU_FROM_PTR=tau_t is not None, HARD_RESET=v_reset is not None,
        DECAY_INPUT=decay_input, STORE_V_SEQ=store_v_seq, SAVE=save, COMPACT=compact, BLOCK=_BLOCK,
        num_warps=_NUM_WARPS,
    )
    if bool(bad.any()):
        raise ValueError("x contains NaN or inf; lif_multistep expects finite inputs")
    return spikes, v_out, saved


def _triton_backward(grad_s, grad_v, saved, v0, inv_tau, tau_t, v_threshold, v_reset, decay_input, detach_reset,
                     surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype):
    kern = _kernels()
    T = saved.shape[0]
    n = saved[0].numel()
    grad_x = torch.empty(saved.shape, dtype=x_dtype, device=saved.device)
    grad_v0 = torch.empty(saved.shape[1:], dtype=torch.float32, device=saved.device)
    grid = kern.grid_size(n, _BLOCK)
    grad_k = torch.zeros(grid if tau_grad else 1, dtype=torch.float32, device=saved.device)
    c1, c2 = reference.surrogate_constants(surrogate_id, alpha)
    dummy = saved
    kern.lif_backward_kernel[(grid,)](
        grad_s if grad_s is not None else dummy, grad_v if grad_v is not None else dummy, saved,
        v0 if v0 is not None else dummy, tau_t if tau_t is not None else dummy, grad_x, grad_v0, grad_k,
        T, n, inv_tau, v_threshold, 0.0 if v_reset is None else v_reset, c1, c2,
        SG_ID=surrogate_id, HAS_GS=grad_s is not None, HAS_GV=grad_v is not None, HAS_V0=v0 is not None,
        TAU_FROM_PTR=tau_t is not None, HARD_RESET=v_reset is not None, DETACH_RESET=detach_reset,
        DECAY_INPUT=decay_input, STORE_V_SEQ=store_v_seq, COMPACT=compact, TAU_GRAD=tau_grad, BLOCK=_BLOCK,
        num_warps=_NUM_WARPS,
    )
    return grad_x, grad_v0, grad_k.sum()


# ------------------------------------------------------------------------------------------------- custom ops
def _v_last_dtype(x: torch.Tensor, v0: Optional[torch.Tensor]) -> torch.dtype:
    # A float32 state handed in stays float32 under bf16 inputs: streaming must not round the state every chunk.
    return v0.dtype if v0 is not None else x.dtype


def _contig(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.contiguous()


@torch.library.custom_op("snnkit::lif_forward", mutates_args=())
def _lif_forward_op(
    x: torch.Tensor, v0: Optional[torch.Tensor], tau_t: Optional[torch.Tensor], inv_tau: float,
    v_threshold: float, v_reset: float, hard_reset: bool, decay_input: bool, store_v_seq: bool,
    compact: bool, save: bool, use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, v0, tau_t = x.contiguous(), _contig(v0), _contig(tau_t)
    vr = v_reset if hard_reset else None
    if use_triton:
        return _triton_forward(x, v0, inv_tau, tau_t, v_threshold, vr, decay_input, store_v_seq, compact, save)
    # One allocation-free reduction: NaN/inf make the sum non-finite. Only then (or when huge finite values overflow
    # the sum) is the exact elementwise check worth its four passes.
    if not bool(torch.isfinite(x.sum(dtype=torch.float64 if x.dtype == torch.float64 else torch.float32))) \
            and not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or inf; lif_multistep expects finite inputs")
    k = (1 / tau_t.to(reference.state_dtype(x.dtype))) if tau_t is not None else inv_tau
    spikes, v_out, saved = reference.lif_forward_reference(
        x, v0, k, v_threshold, vr, decay_input, store_v_seq, compact, save
    )
    return spikes, v_out.to(x.dtype if store_v_seq else _v_last_dtype(x, v0)).contiguous(), saved


@_lif_forward_op.register_fake
def _(x, v0, tau_t, inv_tau, v_threshold, v_reset, hard_reset, decay_input, store_v_seq, compact, save, use_triton):
    saved_dtype = torch.float16 if compact else reference.state_dtype(x.dtype)
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        x.new_empty(x.shape) if store_v_seq else x.new_empty(x.shape[1:], dtype=_v_last_dtype(x, v0)),
        x.new_empty(x.shape if save else (0,), dtype=saved_dtype),
    )


@torch.library.custom_op("snnkit::lif_backward", mutates_args=())
def _lif_backward_op(
    grad_s: Optional[torch.Tensor], grad_v: Optional[torch.Tensor], saved: torch.Tensor, v0: Optional[torch.Tensor],
    tau_t: Optional[torch.Tensor], inv_tau: float, v_threshold: float, v_reset: float, hard_reset: bool,
    decay_input: bool, detach_reset: bool, surrogate_id: int, alpha: float, store_v_seq: bool, compact: bool,
    tau_grad: bool, x_dtype: torch.dtype, use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grad_s, grad_v, v0, tau_t = _contig(grad_s), _contig(grad_v), _contig(v0), _contig(tau_t)
    vr = v_reset if hard_reset else None
    if use_triton:
        return _triton_backward(grad_s, grad_v, saved, v0, inv_tau, tau_t, v_threshold, vr, decay_input,
                                detach_reset, surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype)
    k = (1 / tau_t.to(reference.state_dtype(x_dtype))) if tau_t is not None else inv_tau
    return reference.lif_backward_reference(
        grad_s, grad_v, saved, v0, k, v_threshold, vr, decay_input, detach_reset, surrogate_id, alpha,
        store_v_seq, compact, tau_grad, x_dtype,
    )


@_lif_backward_op.register_fake
def _(grad_s, grad_v, saved, v0, tau_t, inv_tau, v_threshold, v_reset, hard_reset, decay_input, detach_reset,
      surrogate_id, alpha, store_v_seq, compact, tau_grad, x_dtype, use_triton):
    sdt = reference.state_dtype(x_dtype)
    return saved.new_empty(saved.shape, dtype=x_dtype), saved.new_empty(saved.shape[1:], dtype=sdt), \
        saved.new_empty((), dtype=sdt)


class LIFMultistep(torch.autograd.Function):
    """The whole LIF sequence as one autograd node (forward scan + reverse scan)."""

    @staticmethod
    def forward(ctx, x, v0, tau_t, cfg):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        spikes, v_out, saved = torch.ops.snnkit.lif_forward(
            x, v0, tau_t, cfg["inv_tau"], cfg["v_threshold"], cfg["v_reset"], cfg["hard_reset"],
            cfg["decay_input"], cfg["store_v_seq"], cfg["compact"], cfg["save"], cfg["use_triton"],
        )
        ctx.cfg = cfg
        ctx.x_dtype = x.dtype
        ctx.v0_dtype = None if v0 is None else v0.dtype
        ctx.save_for_backward(saved, v0 if cfg["tau_grad"] else None, tau_t)
        return spikes, v_out

    @staticmethod
    def backward(ctx, grad_s, grad_v):  # type: ignore[override]
        cfg = ctx.cfg
        saved, v0, tau_t = ctx.saved_tensors
        if grad_s is None and grad_v is None:
            return None, None, None, None
        grad_x, grad_v0, grad_k = torch.ops.snnkit.lif_backward(
            grad_s, grad_v, saved, v0, tau_t, cfg["inv_tau"], cfg["v_threshold"], cfg["v_reset"],
            cfg["hard_reset"], cfg["decay_input"], cfg["detach_reset"], cfg["surrogate_id"], cfg["alpha"],
            cfg["store_v_seq"], cfg["compact"], ctx.needs_input_grad[2], ctx.x_dtype, cfg["use_triton"],
        )
        gv0 = grad_v0.to(ctx.v0_dtype) if ctx.needs_input_grad[1] else None
        gtau = None
        if ctx.needs_input_grad[2]:
            # dL/dtau = dL/dk * dk/dtau with k = 1/tau.
            gtau = (-grad_k / (tau_t.to(grad_k.dtype) ** 2)).to(tau_t.dtype).reshape(tau_t.shape)
        return grad_x, gv0, gtau, None


# ------------------------------------------------------------------------------------------------- validation
def _check_real(name: str, value, *, allow_none: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number{' or None' if allow_none else ''}, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _check_tau(tau, x: torch.Tensor) -> tuple[float, Optional[torch.Tensor]]:
    """Returns ``(inv_tau, tau_tensor)``; a tensor tau (learnable) travels to the kernel by pointer."""
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"tau as a tensor must hold one value (shape [] or [1]), got shape {tuple(tau.shape)}")
        if not tau.is_floating_point():
            raise TypeError(f"tau as a tensor must be floating point, got {tau.dtype}")
        if tau.device != x.device:
            raise ValueError(f"tau is on {tau.device} but x is on {x.device}")
        return 0.0, tau.reshape(())
    t = _check_real("tau", tau)
    if t <= 1:
        raise ValueError(f"tau must be > 1 (a membrane time constant in steps), got {t}")
    return 1.0 / t, None


def _resolve_backend(backend: str, x: torch.Tensor) -> bool:
    """True when the Triton kernels run this call."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    if backend == "auto":
        return x.is_cuda and x.dtype != torch.float64
    if x.dtype == torch.float64:
        raise ValueError("backend='triton' supports float16, bfloat16 and float32 inputs; use backend='torch' for "
                         "float64")
    if not x.is_cuda and not _interpreting():
        raise ValueError(f"backend='triton' needs a CUDA tensor (x is on {x.device}); set TRITON_INTERPRET=1 to run "
                         "the kernels on CPU through Triton's interpreter, or use backend='torch'")
    _kernels()
    return True


def lif_multistep(
    x: torch.Tensor,
    v0: Optional[torch.Tensor] = None,
    *,
    tau: float | torch.Tensor = 2.0,
    v_threshold: float = 1.0,
    v_reset: Optional[float] = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = Sigmoid(alpha=4.0),
    store_v_seq: bool = False,
    backend: str = "auto",
    storage: str = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a leaky integrate-and-fire neuron over a whole sequence ``x [T, ...]`` (time first).

    Charge ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau`` (``decay_input=True``) or
    ``h_t = v_{t-1} - (v_{t-1} - v_reset) / tau + x_t``; fire ``s_t = H(h_t - v_threshold)``; reset hard
    ``v_t = v_reset`` where it fired, or soft ``v_t = h_t - v_threshold`` when ``v_reset is None``. The backward pass
    uses ``surrogate``'s derivative for ``dH``. Defaults are SpikingJelly's ``LIFNode`` (Fang et al. ICCV 2021).

    Args:
        x: input current ``[T, ...]``, float16/bfloat16/float32 (float64 on the torch backend), finite.
        v0: initial potential ``[...]`` (= ``x.shape[1:]``), differentiable; None starts from rest (``v_reset``,
            or 0 for soft reset).
        tau: membrane time constant in steps, > 1; a one-element tensor makes it learnable (gradient computed in the
            backward scan; see :class:`snnkit.neurons.ParametricLIF`).
        detach_reset: drop the reset's dependence on the spike from the gradient.
        store_v_seq: return the potential after reset at every step ``[T, ...]`` instead of only the last one.
        backend: "auto" (Triton for CUDA tensors, reference PyTorch otherwise), "triton" or "torch".
        storage: what the forward keeps for the backward: "exact" (fp32 ``h``, 4 bytes per neuron-step) or
            "compact" (fp16 ``h - v_threshold``, 2 bytes; spikes exact, ``h`` to 2^-11 relative; see
            ``snnkit/ops/reference.py``). SpikingJelly 2.0 keeps 4 bytes plus the spike.

    Returns:
        ``(spikes, v_last)``, or ``(spikes, v_seq)`` when ``store_v_seq``; in ``x.dtype``, except ``v_last`` which
        takes ``v0``'s dtype when ``v0`` is given (a float32 state stays float32 under bf16 inputs).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be a floating tensor (float16, bfloat16, float32 or float64), got {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"x must be time-first [T, ...] with at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"x has T = 0 time steps (shape {tuple(x.shape)}); need T >= 1")
    if not isinstance(surrogate, Surrogate):
        raise TypeError(f"surrogate must be a snnkit.surrogate.Surrogate (e.g. ATan()), got {type(surrogate).__name__}")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    inv_tau, tau_t = _check_tau(tau, x)
    v_threshold = _check_real("v_threshold", v_threshold)
    v_reset = _check_real("v_reset", v_reset, allow_none=True)
    if v0 is not None:
        if not isinstance(v0, torch.Tensor):
            raise TypeError(f"v0 must be a torch.Tensor or None, got {type(v0).__name__}")
        if tuple(v0.shape) != tuple(x.shape[1:]):
            raise ValueError(f"v0 must have shape x.shape[1:] = {tuple(x.shape[1:])}, got {tuple(v0.shape)}")
        if v0.device != x.device:
            raise ValueError(f"v0 is on {v0.device} but x is on {x.device}")
        if not v0.is_floating_point():
            raise TypeError(f"v0 must be a floating tensor, got {v0.dtype}")
    use_triton = _resolve_backend(backend, x)
    if x.numel() == 0:  # nothing to scan; keep shapes and the graph consistent
        v_out = x.sum(0) * 0 if not store_v_seq else x * 0
        return x * 0, v_out
    tau_grad = tau_t is not None and tau_t.requires_grad
    save = torch.is_grad_enabled() and (
        x.requires_grad or (v0 is not None and v0.requires_grad) or tau_grad
    )
    cfg = dict(
        inv_tau=inv_tau, v_threshold=v_threshold, v_reset=0.0 if v_reset is None else v_reset,
        hard_reset=v_reset is not None, decay_input=bool(decay_input), detach_reset=bool(detach_reset),
        surrogate_id=type(surrogate).kernel_id, alpha=surrogate.alpha, store_v_seq=bool(store_v_seq),
        compact=storage == "compact", save=save, use_triton=use_triton, tau_grad=tau_grad,
    )
    return LIFMultistep.apply(x, v0, tau_t, cfg)
