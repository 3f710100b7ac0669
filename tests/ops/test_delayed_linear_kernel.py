"""The Triton kernels of delayed_linear (tap-sparse gathers), forward and backward, against hand-computed impulse
responses, the dense oracle and dcls. Without CUDA they run in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1), so the shapes are small. Tolerances: float32 1e-5 relative to the largest value; bfloat16
inputs and outputs: one bfloat16 rounding (2^-7) of the float32 accumulation."""

import pytest
import torch

from delayed_linear_cases import triton_available
from test_delayed_linear import check_against_dcls, check_against_naive, check_impulse_response

pytestmark = pytest.mark.skipif(not triton_available(), reason="needs CUDA or TRITON_INTERPRET=1")


def test_impulse_response_integer_delays_triton():
    check_impulse_response("triton", None)


@pytest.mark.parametrize("max_delay,sigma", [(1, None), (5, None), (6, 0.23), (5, 1.5)])
def test_triton_matches_naive_oracle(max_delay, sigma):
    check_against_naive("triton", max_delay, sigma)


def test_triton_more_outputs_than_one_block_bfloat16():
    # 34 outputs span two programs of 32 channels; bfloat16 x, float32 accumulation.
    check_against_naive("triton", 4, None, dtype=torch.bfloat16, C_out=34, tol=2**-7)


def test_triton_matches_dcls():
    pytest.importorskip("DCLS")
    check_against_dcls("triton", 7, 0.3)


def test_layer_on_the_triton_backend_matches_the_torch_backend():
    from snnkit.layers import DelayedLinear

    layers = [DelayedLinear(3, 2, 5, sigma=0.6, backend=b, generator=torch.Generator().manual_seed(0))
              for b in ("torch", "triton")]
    x = torch.randn(7, 2, 3)
    for mode in ("train", "eval"):
        outs = []
        for layer in layers:
            layer.train(mode == "train")
            layer.zero_grad()
            y = layer(x)
            y.square().sum().backward()
            outs.append((y.detach(), layer.weight.grad.clone(),
                         None if layer.positions.grad is None else layer.positions.grad.clone()))
        for a, b in zip(*outs):
            assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, atol=1e-5)), mode
