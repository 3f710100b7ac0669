"""Triton LIF kernels against the PyTorch reference, forward and backward.

Without CUDA the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1), on small shapes.
Tolerances: float32 1e-6 relative to the largest magnitude (the kernels mirror the reference op by op, so they agree
to a few ulps; the tau gradient is a reduction summed in another order: 1e-5). bfloat16 inputs: spikes identical,
potentials and gradients within one bfloat16 rounding of the float32 state (2^-7 relative).
"""

import os

import pytest
import torch

import snnkit.ops as ops
from lif_cases import RESETS, SURROGATES, grid

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs CUDA or TRITON_INTERPRET=1",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _run(backend, x, v0, tau, weights, **cfg):
    x = x.detach().clone().requires_grad_()
    v0 = None if v0 is None else v0.detach().clone().requires_grad_()
    tau = tau.detach().clone().requires_grad_() if isinstance(tau, torch.Tensor) else tau
    spikes, v = ops.lif_multistep(x, v0, tau=tau, backend=backend, **cfg)
    loss = (spikes.float() * weights[0][: spikes.numel()].view_as(spikes)).sum() + \
        (v.float() * weights[1][: v.numel()].view_as(v)).sum()
    inputs = [t for t in (x, v0, tau) if isinstance(t, torch.Tensor)]
    grads = torch.autograd.grad(loss, inputs)
    return [spikes, v, *grads]


def _compare(cfg, dtype=torch.float32, learn_tau=False, with_v0=True, shape=(5, 3, 37), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 1.5 + 0.3).to(DEVICE, dtype)
    v0 = torch.randn(shape[1:], generator=g).to(DEVICE) if with_v0 else None
    tau = torch.tensor(1.7, device=DEVICE) if learn_tau else 1.7
    n = x.numel()
    weights = (torch.randn(n, generator=g).to(DEVICE), torch.randn(n, generator=g).to(DEVICE))
    ref = _run("torch", x, v0, tau, weights, **cfg)
    ker = _run("triton", x, v0, tau, weights, **cfg)
    names = ["spikes", "v", "dx", "dv0", "dtau"][: len(ref)] if with_v0 else ["spikes", "v", "dx", "dtau"]
    for name, a, b in zip(names, ref, ker):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name == "spikes":
            assert torch.equal(a, b), "spikes differ"
            continue
        scale = a.float().abs().max().clamp_min(1.0)
        err = ((a.float() - b.float()).abs().max() / scale).item()
        tol = 2**-7 if dtype != torch.float32 else (1e-5 if name == "dtau" else 1e-6)
        assert err <= tol, f"{name}: relative error {err:.3g} > {tol}"


@pytest.mark.parametrize("cfg", list(grid(
    v_reset=RESETS, decay_input=[True, False], detach_reset=[False, True], surrogate=SURROGATES,
)), ids=str)
@pytest.mark.parametrize("with_v0", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_kernel_matches_reference_every_config(cfg, with_v0, dtype):
    _compare(cfg, with_v0=with_v0, dtype=dtype)


@pytest.mark.parametrize("cfg", list(grid(
    v_reset=[0.0, None], decay_input=[True, False], detach_reset=[False, True], store_v_seq=[False, True],
    storage=["exact", "compact"],
)), ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_kernel_matches_reference_storage_dtype_vseq(cfg, dtype):
    _compare(dict(cfg, surrogate=SURROGATES[0]), dtype=dtype, seed=1)


@pytest.mark.parametrize("cfg", list(grid(
    v_reset=RESETS, decay_input=[True, False], detach_reset=[False, True], surrogate=SURROGATES,
    store_v_seq=[False, True],
)), ids=str)
def test_kernel_tau_gradient_matches_reference(cfg):
    _compare(cfg, learn_tau=True, seed=2)


@pytest.mark.parametrize("storage", ["exact", "compact"])
def test_kernel_tau_gradient_either_storage(storage):
    _compare(dict(surrogate=SURROGATES[1], storage=storage), learn_tau=True, seed=4)


def test_kernel_multiple_programs_and_ragged_tail():
    # N = 2500 spans three 1024-wide programs with a masked tail; T = 9 exercises the pointer walk.
    _compare(dict(surrogate=SURROGATES[0], storage="compact"), shape=(9, 2500), learn_tau=True, seed=3)


def test_kernel_rejects_nonfinite_input():
    x = torch.randn(4, 8, device=DEVICE)
    x[2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        ops.lif_multistep(x, backend="triton")
    x[2, 3] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        ops.lif_multistep(x, backend="triton")


@pytest.mark.parametrize("cfg", [c for c in grid(
    v_threshold=[1.0, None], store_v_seq=[False, True], learn_tau=[False, True], v0_grad=[False, True],
) if not (c["v_threshold"] is None and c["store_v_seq"])], ids=str)  # the non-spiking mode has no store_v_seq
def test_kernel_broadcast_gradients_and_skipped_grad_v0(cfg):
    """``out.sum()`` sends stride-0 gradients, read as one value; a v0 without requires_grad gets no dL/dv0 write."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(5, 3, 37, generator=g).to(DEVICE)
    v0 = torch.randn(3, 37, generator=g).to(DEVICE)
    results = {}
    for backend in ("torch", "triton"):
        for uniform in (True, False):
            xi = x.clone().requires_grad_()
            vi = v0.clone().requires_grad_(cfg["v0_grad"])
            tau = torch.tensor(1.7, device=DEVICE, requires_grad=True) if cfg["learn_tau"] else 1.7
            out, v = ops.lif_multistep(xi, vi, tau=tau, v_threshold=cfg["v_threshold"],
                                       store_v_seq=cfg["store_v_seq"], backend=backend)
            if uniform:
                loss = out.sum() + 0.5 * v.sum()
            else:  # the same loss with materialised gradients
                loss = (out * torch.ones_like(out)).sum() + (v * torch.full_like(v, 0.5)).sum()
            inputs = [t for t in (xi, vi, tau) if isinstance(t, torch.Tensor) and t.requires_grad]
            results[backend, uniform] = torch.autograd.grad(loss, inputs)
    for key, grads in results.items():
        for a, b in zip(grads, results["torch", False]):
            scale = b.abs().max().clamp_min(1.0)
            assert ((a - b).abs().max() / scale).item() <= 1e-5, key
