"""PDSG in the surrogate table and the LIF op: sigma against a hand computation (per channel and per feature), the
CPU loop against the step-by-step oracle, and the Triton backward (TRITON_INTERPRET=1 on CPU) against the CPU loop."""

import math
import os

import pytest
import torch

import snnkit.ops as ops
from snnkit import surrogate as S
from snnkit.ops.lif import lif_multistep_naive


def _hand_sigma(h: torch.Tensor, t: int, c: int) -> float:
    """Unbiased std of channel c over steps 0..t, written as a plain loop over the values."""
    vals = [float(v) for v in h[: t + 1].select(2, c).flatten()] if h.dim() >= 3 else \
        [float(v) for v in h[: t + 1].flatten()]
    n = len(vals)
    if n < 2:
        return 1.0
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    return sd if sd > 0 else 1.0


@pytest.mark.parametrize("shape", [(4, 3, 5, 2, 3), (4, 3, 6), (3, 5)], ids=["conv", "linear", "no-channel"])
def test_sigma_matches_hand_computation(shape):
    h = torch.randn(shape, dtype=torch.float64) * torch.linspace(0.5, 2.0, shape[2] if len(shape) > 2 else 1).view(
        [1, 1, -1] + [1] * (len(shape) - 3) if len(shape) > 2 else [1, 1])
    sigma = S.pdsg_sigma(h)
    channels = shape[2] if len(shape) > 2 else 1
    assert sigma.shape == (shape[0], channels)
    for t in range(shape[0]):
        for c in range(channels):
            assert sigma[t, c].item() == pytest.approx(_hand_sigma(h, t, c), rel=1e-12)


def test_sigma_zero_and_undefined_become_one():
    h = torch.randn(3, 2, 4)
    h[:, :, 1] = 0.7  # a constant feature: std exactly 0 -> 1
    sigma = S.pdsg_sigma(h)
    assert torch.equal(sigma[:, 1], torch.ones(3))
    assert (sigma[:, 0] != 1).all()
    one = S.pdsg_sigma(torch.randn(2, 1, 3))  # batch 1: a single potential at t = 0 has no std -> 1
    assert torch.equal(one[0], torch.ones(3)) and (one[1] != 1).all()


def test_derivative_is_the_right_shifted_gaussian():
    u = torch.linspace(-3, 3, 101, dtype=torch.float64)
    for sigma in (0.3, 1.0, 2.5):
        got = S.surrogate_derivative(u, S.PDSG_ID, 1.0, c1=torch.tensor(1 / sigma, dtype=torch.float64))
        want = torch.exp(-((u - sigma / 2) ** 2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
        assert u[got.argmax()].item() == pytest.approx(sigma / 2, abs=0.06)  # the peak is shifted right


def _grads(backend, x, w, storage="exact", v_reset=0.0):
    xx = x.clone().requires_grad_()
    if backend == "naive":
        s, _ = lif_multistep_naive(xx, surrogate=S.PDSG(), v_reset=v_reset)
    else:
        s, _ = ops.lif_multistep(xx, surrogate=S.PDSG(), backend=backend, storage=storage, v_reset=v_reset)
    (g,) = torch.autograd.grad((s * w).sum(), xx)
    return s.detach(), g


@pytest.mark.parametrize("shape", [(5, 3, 4, 2, 3), (6, 2, 9)], ids=["conv", "linear"])
@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard", "soft"])
def test_cpu_loop_matches_oracle(shape, v_reset):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + 0.3
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    s_ref, g_ref = _grads("naive", x, w, v_reset=v_reset)
    s, gx = _grads("torch", x, w, v_reset=v_reset)
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(gx, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                    reason="needs CUDA or TRITON_INTERPRET=1")
@pytest.mark.parametrize("shape", [(5, 3, 4, 2, 3), (5, 3, 37), (4, 6)], ids=["conv", "linear", "no-channel"])
@pytest.mark.parametrize("storage", ["exact", "compact"])
def test_triton_backward_matches_cpu(shape, storage):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=g) * 1.5 + 0.3
    w = torch.randn(shape, generator=g)
    s_cpu, g_cpu = _grads("torch", x, w, storage)
    s_tri, g_tri = _grads("triton", x, w, storage)
    assert torch.equal(s_cpu, s_tri)
    scale = g_cpu.abs().max().clamp_min(1.0)
    assert ((g_cpu - g_tri).abs().max() / scale).item() <= 1e-6
