"""delayed_linear under torch.compile: the custom ops' fakes let it trace with fullgraph=True, and the compiled
results (output and gradients of x, weights and delays) equal eager ones."""

import pytest
import torch

from snnkit.ops import delayed_linear


def _loss(x, w, p, sigma):
    return delayed_linear(torch.tanh(x), w, p, 6, sigma).square().sum()


@pytest.mark.parametrize("sigma", [0.4, 2.0, None])
def test_compiled_equals_eager_fullgraph(sigma):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 2, 4, generator=g), torch.randn(3, 4, generator=g)
    p = torch.rand(3, 4, generator=g) * 5
    results = []
    for fn in (_loss, torch.compile(_loss, backend="aot_eager", fullgraph=True)):
        xr, wr, pr = (t.clone().requires_grad_() for t in (x, w, p))
        loss = fn(xr, wr, pr, sigma)
        loss.backward()
        results.append((loss.detach(), xr.grad, wr.grad, pr.grad))
    for a, b in zip(*results):
        if a is None:
            assert b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
