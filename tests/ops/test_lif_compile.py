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


def test_fused_cpu_path_inside_a_fullgraph_compiled_model(monkeypatch):
    """The custom op's CPU branch calls the fused path's own compiled chunks at run time, inside the model's graph."""
    from snnkit.ops.lif import fused_cpu

    if not fused_cpu.available():
        pytest.skip("no working C++ compiler for torch.compile")
    calls = []
    for name in ("lif_forward_fused", "lif_backward_fused"):
        real = getattr(fused_cpu, name)
        monkeypatch.setattr(fused_cpu, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(fused_cpu.CHUNK + 1, 3, 37, generator=g)
    w = torch.randn(fused_cpu.CHUNK + 1, 3, 37, generator=g)
    results = []
    for backend, compiler in (("torch", None), ("fused", None), ("fused", "inductor")):
        fn = _net_loss if compiler is None else torch.compile(_net_loss, backend=compiler, fullgraph=True)
        xr = x.clone().requires_grad_()
        loss = fn(xr, None, 1.7, w, backend=backend)
        loss.backward()
        results.append((loss.detach(), xr.grad))
    assert calls == ["lif_forward_fused", "lif_backward_fused"] * 2  # eager and compiled
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
