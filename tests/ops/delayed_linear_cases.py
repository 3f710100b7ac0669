"""Shared helpers of the delayed_linear op tests: random small problems and a backward through fixed weights."""

from __future__ import annotations

import os

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def triton_available() -> bool:
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


#: The torch path forced to its sparse per-delay products or to conv1d (the Triton kernels, slow under the
#: interpreter, have their own smaller set of cases in test_delayed_linear_kernel.py).
ROUTES = ["torch-sparse", "torch-dense"]


def select_route(route: str, monkeypatch) -> str:
    """Force ``route`` and return the op's ``backend`` argument for it."""
    from snnkit.ops.delayed_linear import cpu

    if route.startswith("torch"):
        monkeypatch.setattr(cpu, "SPARSE_MAX_WIDTH_FRACTION", 1.0 if route == "torch-sparse" else 0.0)
        return "torch"
    return route


def problem(T=9, B=2, C_in=4, C_out=3, max_delay=5, seed=0, dtype=torch.float32, integer=False):
    """x, weight, positions (in [0, max_delay - 1]) and a cotangent for the output."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, C_in, generator=g, dtype=torch.float64)
    w = torch.randn(C_out, C_in, generator=g, dtype=torch.float64)
    p = torch.rand(C_out, C_in, generator=g, dtype=torch.float64) * (max_delay - 1)
    if integer:
        p = p.round()
    gy = torch.randn(T, B, C_out, generator=g, dtype=torch.float64)
    return [t.to(DEVICE, dtype) for t in (x, w, p, gy)]


def run(fn, x, w, p, gy, *args, **kwargs):
    """``(y, dx, dw, dp)`` of ``fn(x, w, p, *args, **kwargs)`` against the cotangent ``gy`` (dp None when the
    positions get no gradient)."""
    x, w, p = (t.detach().clone().requires_grad_() for t in (x, w, p))
    y = fn(x, w, p, *args, **kwargs)
    dx, dw, dp = torch.autograd.grad((y * gy).sum(), (x, w, p), allow_unused=True)
    return y.detach(), dx, dw, dp


def rel_err(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-30) -> float:
    """Largest absolute difference relative to the largest magnitude of ``a`` (at least ``floor``)."""
    return ((a.double() - b.double()).abs().max() / a.double().abs().max().clamp_min(floor)).item()
