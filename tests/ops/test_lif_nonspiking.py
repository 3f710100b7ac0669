"""The non-spiking mode of the LIF op (``v_threshold=None``: charge only, the potential is the output).

Oracles: a float64 loop of the charge equation written out here (not the library's), autograd through it for the
gradients, and ``gradcheck``; the Triton kernels (interpreted on CPU) against the CPU loop; and the
``LeakyIntegrator`` readout against the formula it had before it called the op.
"""

import os

import pytest
import torch

import snnkit.ops as ops
from lif_cases import grid
from snnkit.layers import LeakyIntegrator

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_triton = pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs CUDA or TRITON_INTERPRET=1",
)


def charge_loop(x, v0, tau, v_reset, decay_input):
    """float64 leaky integration, written independently of snnkit: returns the potential at every step."""
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], vr) if v0 is None else v0
    out = []
    for x_t in x:
        v = v + (x_t - (v - vr)) / tau if decay_input else v - (v - vr) / tau + x_t
        out.append(v)
    return torch.stack(out)


CONFIGS = list(grid(v_reset=[0.0, -0.3, None], decay_input=[True, False], with_v0=[False, True]))


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_cpu_equals_float64_charge_loop_forward_and_backward(cfg):
    g = torch.Generator().manual_seed(0)
    shape = (9, 3, 5)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(shape[1:], generator=g, dtype=torch.float64, requires_grad=True) if cfg["with_v0"] else None
    tau = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    w_out, w_last = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape[1:], generator=g,
                                                                                       dtype=torch.float64)
    out, v_last = ops.lif_multistep(x, v0, tau=tau, v_threshold=None, v_reset=cfg["v_reset"],
                                    decay_input=cfg["decay_input"])
    want = charge_loop(x, v0, tau, cfg["v_reset"], cfg["decay_input"])
    torch.testing.assert_close(out, want, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(v_last, want[-1], rtol=1e-13, atol=1e-13)
    inputs = [t for t in (x, v0, tau) if t is not None]
    got = torch.autograd.grad((out * w_out).sum() + (v_last * w_last).sum(), inputs)
    ref = torch.autograd.grad((want * w_out).sum() + (want[-1] * w_last).sum(), inputs)
    for name, a, b in zip(["dx", "dv0", "dtau"] if v0 is not None else ["dx", "dtau"], got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_gradcheck_nonspiking():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)

    def f(x, v0, tau):
        out, v = ops.lif_multistep(x, v0, tau=tau, v_threshold=None, v_reset=0.2)
        return out, v

    assert torch.autograd.gradcheck(f, (x, v0, tau))


def test_nonspiking_saves_nothing_without_a_learnable_tau():
    x = torch.randn(8, 4, 16, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = ops.lif_multistep(x, v_threshold=None)
    assert sum(sizes) == 0, f"saved {sizes}"
    out.sum().backward()
    assert x.grad is not None


def test_nonspiking_rejects_store_v_seq():
    with pytest.raises(ValueError, match="store_v_seq"):
        ops.lif_multistep(torch.randn(3, 2), v_threshold=None, store_v_seq=True)


@needs_triton
@pytest.mark.parametrize("cfg", list(grid(v_reset=[0.0, -0.3, None], decay_input=[True, False],
                                         with_v0=[False, True], learn_tau=[False, True])), ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_triton_nonspiking_matches_cpu(cfg, dtype):
    g = torch.Generator().manual_seed(2)
    shape = (7, 3, 41)
    x = torch.randn(shape, generator=g).to(DEVICE, dtype)
    v0 = torch.randn(shape[1:], generator=g).to(DEVICE) if cfg["with_v0"] else None
    w = torch.randn(shape, generator=g).to(DEVICE)
    w_last = torch.randn(shape[1:], generator=g).to(DEVICE)
    results = []
    for backend in ("torch", "triton"):
        xi = x.clone().requires_grad_()
        vi = None if v0 is None else v0.clone().requires_grad_()
        tau = torch.tensor(1.8, device=DEVICE, requires_grad=True) if cfg["learn_tau"] else 1.8
        out, v_last = ops.lif_multistep(xi, vi, tau=tau, v_threshold=None, v_reset=cfg["v_reset"],
                                        decay_input=cfg["decay_input"], backend=backend)
        loss = (out.float() * w).sum() + (v_last.float() * w_last).sum()
        inputs = [t for t in (xi, vi, tau) if isinstance(t, torch.Tensor)]
        results.append([out, v_last, *torch.autograd.grad(loss, inputs)])
    tol = 1e-5 if dtype == torch.float32 else 2**-7
    for a, b in zip(*results):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = a.float().abs().max().clamp_min(1.0)
        assert ((a.float() - b.float()).abs().max() / scale).item() <= tol


def test_leaky_integrator_output_unchanged():
    """Before it called the op, LeakyIntegrator computed ``v = (1 - 1/tau) v + x / tau`` step by step."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(11, 4, 20, generator=g, dtype=torch.float64, requires_grad=True)
    tau = 2.0
    v, old = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        v = (1.0 - 1.0 / tau) * v + x[t] / tau
        old.append(v)
    old = torch.stack(old)
    new = LeakyIntegrator(tau)(x)
    torch.testing.assert_close(new, old, rtol=1e-14, atol=1e-14)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    (ga,) = torch.autograd.grad((new * w).sum(), x)
    (gb,) = torch.autograd.grad((old * w).sum(), x)
    torch.testing.assert_close(ga, gb, rtol=1e-14, atol=1e-14)
    y = LeakyIntegrator(tau)(x.float().detach())
    torch.testing.assert_close(y, old.float().detach(), rtol=1e-6, atol=1e-6)
