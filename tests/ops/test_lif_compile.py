"""lif_multistep under torch.compile: the custom ops' fake implementations let it trace with fullgraph=True, and
compiled results (forward and gradients) equal eager ones."""

import pytest
import torch

import snnkit
from snnkit import surrogate


def _net_loss(x, v0, tau, w, **cfg):
    s, v = snnkit.ops.lif_multistep(torch.tanh(x) * 2, v0, tau=tau, surrogate=surrogate.ATan(), **cfg)
    return (s * w).sum() + v.square().sum()


@pytest.mark.parametrize("backend_compiler", ["aot_eager", "inductor"])
@pytest.mark.parametrize("cfg", [dict(v_reset=0.0), dict(v_reset=None, storage="compact", store_v_seq=True)], ids=str)
def test_compiled_equals_eager(backend_compiler, cfg):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 16, generator=g)
    v0 = torch.randn(4, 16, generator=g)
    w = torch.randn(6, 4, 16, generator=g)
    results = []
    for fn in (_net_loss, torch.compile(_net_loss, backend=backend_compiler, fullgraph=True)):
        xr, vr = x.clone().requires_grad_(), v0.clone().requires_grad_()
        tau = torch.tensor(1.7, requires_grad=True)
        loss = fn(xr, vr, tau, w, **cfg)
        loss.backward()
        results.append((loss.detach(), xr.grad, vr.grad, tau.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_compiled_module():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), snnkit.neurons.LIF(tau=2.0, surrogate=surrogate.ATan()))
    x = torch.randn(5, 3, 8)
    eager = model(x)
    compiled = torch.compile(model, backend="aot_eager")(x)
    assert torch.equal(eager, compiled)
