"""The delayed_linear op against hand-computed impulse responses, the dcls package (Dcls1d, version='gauss') and
float64 gradcheck. Tolerances: float32 paths agree with float64 references to 1e-5 relative to the largest value
(a sum of at most C_in * max_delay products); dcls normalises with ``sum + 1e-7`` (1e-6)."""

import pytest
import torch
import torch.nn.functional as F

from delayed_linear_cases import DEVICE, ROUTES, problem, rel_err, run, select_route
from snnkit.ops import delayed_linear
from snnkit.ops.delayed_linear import delayed_linear_naive


@pytest.fixture(params=ROUTES)
def backend(request, monkeypatch):
    return select_route(request.param, monkeypatch)


@pytest.mark.parametrize("sigma", [None, 1e-3])
def test_impulse_response_integer_delays(backend, sigma):
    check_impulse_response(backend, sigma)


def check_impulse_response(backend, sigma):
    """A spike on input i at time t reaches output j at t + d_ji with weight w_ji, nothing else; and back."""
    T, D = 12, 6
    w = torch.tensor([[0.5, -2.0, 1.5], [3.0, 0.25, -1.0]], device=DEVICE)
    d = torch.tensor([[0, 5, 2], [3, 1, 4]], device=DEVICE)
    for i in range(3):
        for t0 in (0, 4, T - 3):
            x = torch.zeros(T, 1, 3, device=DEVICE)
            x[t0, 0, i] = 1.0
            y = delayed_linear(x, w, d.float(), D, sigma, backend=backend)
            expected = torch.zeros(T, 1, 2, device=DEVICE)
            for j in range(2):
                if t0 + d[j, i] < T:  # the tail past T - 1 is dropped
                    expected[t0 + d[j, i], 0, j] = w[j, i]
            assert torch.allclose(y, expected, atol=1e-6), (i, t0)
    # Backward: the gradient of out[t, 0, j] reaches x[t - d_ji, 0, i] with weight w_ji, and w_ji sees x[t - d_ji].
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, 1, 3, generator=g).to(DEVICE).requires_grad_()
    wp = w.clone().requires_grad_()
    t, j = 9, 1
    y = delayed_linear(x, wp, d.float(), D, sigma, backend=backend)
    dx, dw = torch.autograd.grad(y[t, 0, j], (x, wp))
    expected_dx = torch.zeros_like(x)
    expected_dw = torch.zeros_like(w)
    for i in range(3):
        expected_dx[t - d[j, i], 0, i] = w[j, i]
        expected_dw[j, i] = x[t - d[j, i], 0, i]
    assert torch.allclose(dx, expected_dx, atol=1e-6)
    assert torch.allclose(dw, expected_dw, atol=1e-6)


def test_tail_is_dropped_and_padding_keeps_it():
    x, w, p, _ = problem(T=7, max_delay=5, integer=True)
    y = delayed_linear(x, w, p, 5)
    padded = delayed_linear(F.pad(x, (0, 0, 0, 0, 0, 4)), w, p, 5)
    assert padded.shape[0] == 11
    assert torch.allclose(padded[:7], y, atol=1e-6)
    # The full response holds every contribution: summed over time it is x summed over time through the weights.
    assert torch.allclose(padded.sum(0), x.sum(0) @ w.T, atol=1e-5)


def _dcls(max_delay, w, p, sigma):
    from DCLS.construct.modules import Dcls1d

    m = Dcls1d(w.shape[1], w.shape[0], kernel_count=1, dilated_kernel_size=max_delay, version="gauss", bias=False)
    m = m.to(DEVICE, torch.float64)
    with torch.no_grad():
        m.weight.copy_(w.unsqueeze(-1))
        m.P.copy_(((max_delay - 1) - p - max_delay // 2).reshape(1, *p.shape, 1))  # delay -> centred tap position
        m.SIG.fill_(sigma - 0.27)  # dcls's width is |SIG| + 0.27
    return m


@pytest.mark.parametrize("max_delay,sigma", [(5, 2.0), (6, 0.5), (7, 0.3), (25, 12.0), (25, 0.5)])
def test_matches_dcls_outputs_and_gradients(backend, max_delay, sigma):
    pytest.importorskip("DCLS")
    check_against_dcls(backend, max_delay, sigma)


def check_against_dcls(backend, max_delay, sigma):
    x, w, p, gy = problem(T=11, C_in=5, C_out=4, max_delay=max_delay, seed=3, dtype=torch.float64)
    m = _dcls(max_delay, w, p, sigma)
    xr = x.clone().requires_grad_()
    y_ref = m(F.pad(xr.permute(1, 2, 0), (max_delay - 1, 0))).permute(2, 0, 1)
    dx_ref, dw_ref, dP_ref = torch.autograd.grad((y_ref * gy).sum(), (xr, m.weight, m.P))
    dtype = torch.float64 if backend == "torch" else torch.float32
    y, dx, dw, dp = run(delayed_linear, *(t.to(dtype) for t in (x, w, p, gy)), max_delay, sigma, backend=backend)
    tol = 1e-6 if dtype == torch.float64 else 1e-5
    assert rel_err(y_ref, y) < tol
    assert rel_err(dx_ref, dx) < tol
    assert rel_err(dw_ref[:, :, 0], dw) < tol
    assert rel_err(-dP_ref[0, :, :, 0], dp) < tol  # positions = const - P


@pytest.mark.parametrize("route", ["torch-sparse", "torch-dense"])
def test_gradcheck_float64_torch_path(route, monkeypatch):
    select_route(route, monkeypatch)
    x, w, p, _ = problem(T=6, B=2, C_in=3, C_out=2, max_delay=4, seed=5, dtype=torch.float64)
    for sigma in (0.3, 0.8, 2.5):
        inputs = tuple(t.clone().requires_grad_() for t in (x, w, p))
        assert torch.autograd.gradcheck(lambda a, b, c, s=sigma: delayed_linear(a, b, c, 4, s, backend="torch"), inputs)
    inputs = tuple(t.clone().requires_grad_() for t in (x, w))
    assert torch.autograd.gradcheck(lambda a, b: delayed_linear(a, b, p, 4, None, backend="torch"), inputs)


def test_integer_path_gives_positions_no_gradient(backend):
    x, w, p, gy = problem(max_delay=5)
    _, _, _, dp = run(delayed_linear, x, w, p, gy, 5, None, backend=backend)
    assert dp is None or not bool(dp.any())


@pytest.mark.parametrize("max_delay,sigma", [(1, 0.7), (1, None), (4, None), (6, 0.23), (6, 0.9), (6, 3.0),
                                             (9, 0.05)])
def test_matches_naive_oracle(backend, max_delay, sigma):
    check_against_naive(backend, max_delay, sigma)


def check_against_naive(backend, max_delay, sigma, dtype=torch.float32, C_out=4, tol=1e-5):
    x, w, p, gy = problem(T=10, C_in=5, C_out=C_out, max_delay=max_delay, seed=7)
    x = x.to(dtype)  # the reference sees the same (rounded) input
    ref = run(delayed_linear_naive, *(t.double() for t in (x, w, p, gy)), max_delay, sigma)
    got = run(delayed_linear, x, w, p, gy, max_delay, sigma, backend=backend)
    for name, a, b in zip(("y", "dx", "dw", "dp"), ref, got):
        if a is None or sigma is None and name == "dp":
            continue
        # A narrow Gaussian's position gradient is a cancellation (g (u - mean u) with g ~ 1): float32 resolves it
        # to 1e-7 absolute, so it is measured against a scale of at least 1.
        assert b.dtype == (dtype if name in ("y", "dx") else torch.float32), name
        assert rel_err(a, b, floor=1.0 if name == "dp" else 1e-30) < tol, name


@pytest.mark.parametrize("max_delay", [25, 31, 64])
def test_support_window_drops_less_than_float32_resolution(max_delay):
    """The taps outside each synapse's window carry less than 2^-24 of the Gaussian's mass (float64 measurement
    against the dense taps), so truncating and renormalising changes no tap beyond float32 precision."""
    from snnkit.ops.delayed_linear.naive import gaussian_taps
    from snnkit.ops.delayed_linear.taps import (FLOAT32_HALF_ULP, support_bound, support_radius, tap_coefficients,
                                                tap_window)

    inside = torch.linspace(0, max_delay - 1, 4 * (max_delay - 1) + 3, dtype=torch.float64)
    outside = torch.tensor([-5.0, -1.3, max_delay - 0.5, max_delay + 0.7, max_delay + 5], dtype=torch.float64)
    p = torch.cat([inside, outside]).view(1, -1)  # the op does not require the layer's clamp
    for sigma in (0.05, 0.23, 0.3, 0.5, 1.0, 2.0, 5.0, 12.0, 15.5):
        dense = gaussian_taps(p, max_delay, sigma)
        start, width = tap_window(p, max_delay, sigma)
        k = torch.arange(max_delay)
        in_window = (k >= start.long().unsqueeze(-1)) & (k < start.long().unsqueeze(-1) + width)
        kept = dense.gather(-1, start.long().unsqueeze(-1) + torch.arange(width))
        dropped = (dense * ~in_window).sum(-1).max().item()
        radius = support_radius(sigma, max_delay)
        if width < max_delay:
            assert dropped <= support_bound(radius, sigma) < FLOAT32_HALF_ULP, sigma
            assert support_bound(radius - 1, sigma) >= FLOAT32_HALF_ULP  # the smallest such window
        truncated = tap_coefficients(torch.ones_like(p), p, start, width, sigma, torch.float64)
        assert (truncated - kept).abs().max().item() < FLOAT32_HALF_ULP
    assert tap_window(p, 25, 0.23)[1] == 3  # the schedule's last sigma touches 3 of 25 taps


@pytest.mark.parametrize("sigma", [None, 0.3])
def test_sparse_route_in_column_chunks(sigma, monkeypatch):
    """The sparse products run over chunks of (time, batch) columns; chunks that split a time step agree too."""
    from snnkit.ops.delayed_linear import cpu

    monkeypatch.setattr(cpu, "COLUMN_CHUNK", 3)
    check_against_naive(select_route("torch-sparse", monkeypatch), 7, sigma)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_on_the_torch_path(dtype):
    """Half-precision x is computed in float32 and returned in its dtype (one rounding of the float32 result)."""
    check_against_naive("torch", 6, 0.4, dtype=dtype, tol=2**-7)


def test_non_contiguous_input_and_mixed_parameter_dtypes(backend):
    x, w, p, _ = problem(T=8, C_in=4, C_out=3, max_delay=5, seed=11)
    batch_first = x.transpose(0, 1).contiguous()  # [B, T, C]: a time-first view of it is not contiguous
    view = batch_first.transpose(0, 1)
    assert not view.is_contiguous()
    expected = delayed_linear_naive(x.double(), w.double(), p.double(), 5, 0.7)
    got = delayed_linear(view, w, p.double(), 5, 0.7, backend=backend)  # float64 positions, float32 weights
    assert got.dtype == torch.float32 and rel_err(expected, got) < 1e-5
