"""``lif_multistep``: a whole leaky integrate-and-fire sequence as one differentiable op.

Everything about the op is in this folder (the layout every snnkit op follows, after flash-linear-attention's
``fla/ops/<op>/``):

- ``naive.py``: the readable oracle, step by step with autograd doing the backward (tests compare against it);
- ``cpu.py``: the CPU path, fused loops without an autograd graph (equations, saved tensors, precision);
- ``fused_cpu.py``: the same math in chunks of time steps compiled by ``torch.compile`` (one loop over neurons per
  chunk), used on CPU where it pays;
- ``launch.py``: the Triton launchers of the kernels in ``triton_kernels/lif.py`` (installed as ``snnkit.kernels``);
- ``function.py``: :class:`LIFConfig`, the ``torch.library`` custom ops with fakes, the checks and the
  ``autograd.Function``;
- this file: the validated public function.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...surrogate import Sigmoid, Surrogate
from ...validation import FLOAT_DTYPES, check_bool, check_real, check_tau, check_tensor
from .._dispatch import use_triton
from .cpu import state_dtype
from .function import CHECKS, LIFConfig, LIFMultistep
from .fused_cpu import release_buffers as release_cpu_buffers
from .fused_cpu import warm_up_fused
from .naive import lif_multistep_naive

__all__ = ["lif_multistep", "lif_multistep_naive", "state_dtype", "LIFConfig", "BACKENDS", "STORAGES", "CHECKS",
           "warm_up_fused", "release_cpu_buffers"]

BACKENDS = ("auto", "triton", "torch", "fused")
STORAGES = ("exact", "compact")


def _cpu_path(backend: str) -> str:
    """The custom ops' ``cpu_path`` for ``backend`` (see ``function.CPU_PATHS``)."""
    return {"torch": "loop", "fused": "fused"}.get(backend, "auto")


def _resolve_backend(backend: str, x: torch.Tensor) -> bool:
    """True when the Triton kernels run this call."""
    if backend == "fused":
        if x.device.type != "cpu":
            raise ValueError(f"backend='fused' is the CPU path compiled by torch.compile; x is on {x.device} (use "
                             "backend='auto' or 'triton' for CUDA tensors)")
        if x.dtype == torch.float64:
            raise ValueError("backend='fused' supports float16, bfloat16 and float32 inputs; use backend='torch' "
                             "for float64")
        return False
    return use_triton(backend, x, op="lif", choices=BACKENDS)


def _resolve_check(check: str, x: torch.Tensor) -> str:
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    if check == "auto":
        return "async" if x.is_cuda else "sync"
    return check


def lif_multistep(
    x: torch.Tensor,
    v0: Optional[torch.Tensor] = None,
    *,
    tau: float | torch.Tensor = 2.0,
    v_threshold: Optional[float] = 1.0,
    v_reset: Optional[float] = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: Surrogate = Sigmoid(alpha=4.0),
    store_v_seq: bool = False,
    backend: str = "auto",
    storage: str = "exact",
    check: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a leaky integrate-and-fire neuron over a whole sequence ``x [T, ...]`` (time first).

    Charge ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau`` (``decay_input=True``) or
    ``h_t = v_{t-1} - (v_{t-1} - v_reset) / tau + x_t``; fire ``s_t = H(h_t - v_threshold)``; reset hard
    ``v_t = v_reset`` where it fired, or soft ``v_t = h_t - v_threshold`` when ``v_reset is None``. The backward pass
    uses ``surrogate``'s derivative for ``dH``. Defaults are SpikingJelly's ``LIFNode`` (Fang et al. ICCV 2021).
    With ``v_threshold=None`` the neuron never fires (non-spiking mode, a leaky integrator: ``v_t = h_t``) and its
    output is the potential, the readout of Hammouamri et al. (ICLR 2024).

    Args:
        x: input current ``[T, ...]``, float16/bfloat16/float32 (float64 on the torch backend), finite.
        v0: initial potential ``[...]`` (= ``x.shape[1:]``), differentiable, finite; None starts from rest
            (``v_reset``, or 0 for soft reset).
        tau: membrane time constant in steps, > 1; a one-element tensor makes it learnable (gradient computed in the
            backward scan; see :class:`snnkit.neurons.ParametricLIF`); the same rule holds for both.
        v_threshold: firing threshold, or None for the non-spiking mode.
        v_reset: reset (and resting) potential, or None for soft reset (rest at 0).
        detach_reset: drop the reset's dependence on the spike from the gradient.
        surrogate: a :class:`snnkit.surrogate.Surrogate` (unused in non-spiking mode).
        store_v_seq: return the potential after reset at every step ``[T, ...]`` instead of only the last one
            (spiking mode; the non-spiking mode already returns every step's potential as its first output).
        backend: "auto" (Triton for CUDA tensors; on CPU the fused path of ``fused_cpu.py`` from 2^20 neuron-steps
            ``T * x[0].numel()`` on where a C++ compiler works, else the CPU loop), "triton", "torch" (always the
            plain CPU loop) or "fused" (CPU tensors: always the fused path, compiled on first use; the loop if no
            C++ compiler works, with one warning). See ``docs/lif.md``, "Dispatch".
        storage: what the forward keeps for the backward: "exact" (fp32 ``h``, 4 bytes per neuron-step) or
            "compact" (fp16 ``h - v_threshold``, 2 bytes; spikes exact, ``h`` to 2^-11 relative; see
            ``snnkit/ops/lif/cpu.py``). SpikingJelly 2.0 keeps 4 bytes plus the spike. The non-spiking mode saves
            nothing (fp32 ``h`` only for a learnable tau). A learnable tau always uses "exact": its gradient
            ``sum_t dL/dh_t dh_t/dk`` multiplies float16's error in ``h`` by tau or amplifies it by cancellation.
        check: NaN/inf in ``x`` or ``v0``: "auto" ("sync" for CPU tensors, "async" for CUDA ones), "sync" (raise
            ValueError at once; on CUDA a host synchronisation per call), "async" (``torch._assert_async`` on the
            device: no synchronisation, a failure surfaces as a device-side assert at the next one) or "off".

    Returns:
        ``(spikes, v_last)``, or ``(spikes, v_seq)`` when ``store_v_seq``; ``(v_seq, v_last)`` in non-spiking mode.
        Spikes in ``x.dtype``; the potentials (``v_last`` or ``v_seq``) take ``v0``'s dtype when ``v0`` is given (a
        float32 state stays float32 under bf16 inputs, so streaming never rounds it), else ``x.dtype``.
    """
    check_tensor("x", x, min_dim=2, dtypes=FLOAT_DTYPES, time_first=True)
    spiking = v_threshold is not None
    if spiking and not isinstance(surrogate, Surrogate):
        raise TypeError(f"surrogate must be a snnkit.surrogate.Surrogate (e.g. ATan()), got {type(surrogate).__name__}")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    tau_checked = check_tau("tau", tau, device=x.device)
    tau_t = tau_checked if isinstance(tau_checked, torch.Tensor) else None
    inv_tau = 0.0 if tau_t is not None else 1.0 / tau_checked
    v_threshold = check_real("v_threshold", v_threshold, allow_none=True)
    for flag, value in (("decay_input", decay_input), ("detach_reset", detach_reset), ("store_v_seq", store_v_seq)):
        check_bool(flag, value)
    v_reset = check_real("v_reset", v_reset, allow_none=True)
    if not spiking and store_v_seq:
        raise ValueError("store_v_seq is for spiking neurons: with v_threshold=None the first output already is the "
                         "potential of every step")
    if v0 is not None:
        check_tensor("v0", v0, dtypes=FLOAT_DTYPES)
        if tuple(v0.shape) != tuple(x.shape[1:]):
            raise ValueError(f"v0 must have shape x.shape[1:] = {tuple(x.shape[1:])}, got {tuple(v0.shape)}")
        if v0.device != x.device:
            raise ValueError(f"v0 is on {v0.device} but x is on {x.device}")
    use_triton = _resolve_backend(backend, x)
    check = _resolve_check(check, x)
    if x.numel() == 0:  # nothing to scan; keep shapes and the graph consistent
        v_out = x.sum(0) * 0 if not store_v_seq else x * 0
        return x * 0, v_out
    tau_grad = tau_t is not None and tau_t.requires_grad
    grad_needed = torch.is_grad_enabled() and (x.requires_grad or (v0 is not None and v0.requires_grad) or tau_grad)
    cfg = LIFConfig(
        inv_tau=inv_tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=bool(decay_input),
        detach_reset=bool(detach_reset), surrogate_id=type(surrogate).kernel_id if spiking else 0,
        alpha=surrogate.alpha if spiking else 1.0, store_v_seq=bool(store_v_seq),
        # The tau gradient sums dL/dh_t dh_t/dk over all steps, dh_t/dk = (h_t - v_{t-1}) / k or -(v_{t-1} - v_reset):
        # float16's 2^-11 relative error in h comes back multiplied by tau, or amplified by cancellation in the sum
        # (1e-2 to 5e-2 measured), so a learnable tau keeps the exact save.
        compact=spiking and storage == "compact" and not tau_grad,
        # The non-spiking mode is linear in x and v0: only a learnable tau needs the potentials back.
        save=grad_needed and (spiking or tau_grad), tau_grad=tau_grad, use_triton=use_triton, check=check,
        cpu_path=_cpu_path(backend),
    )
    return LIFMultistep.apply(x, v0, tau_t, cfg)
