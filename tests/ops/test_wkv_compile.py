"""wkv under torch.compile: the custom ops' fake implementations let it trace with fullgraph=True (no graph break,
no unrolled loop over tokens), and compiled results (forward and gradients) equal eager ones. aot_eager keeps the
test fast; the op itself is opaque to the compiler, so inductor would only change the code around it."""

import torch

from snnkit.ops import wkv


def _loss(w_raw, u, k, v, pq, o, weights):
    y, state = wkv(-torch.exp(w_raw), u, torch.tanh(k) * 3, v, torch.cat([pq, o]))
    return (y * weights).sum() + (state[0] / state[1]).sum()


def test_compiled_equals_eager_fullgraph():
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    T, B, C = 6, 2, 5
    inputs = [torch.randn(C, generator=g), torch.randn(C, generator=g), torch.randn(T, B, C, generator=g),
              torch.randn(T, B, C, generator=g), torch.rand(2, B, C, generator=g) + 0.5]
    o = torch.randn(1, B, C, generator=g)
    weights = torch.randn(T, B, C, generator=g)
    results = []
    for fn in (_loss, torch.compile(_loss, backend="aot_eager", fullgraph=True)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        loss = fn(*leaves, o, weights)
        results.append([loss.detach(), *torch.autograd.grad(loss, leaves)])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_fake_shapes_match_the_real_op():
    # the fakes must describe the real outputs exactly (shape, dtype), or compiled graphs would be wrong silently
    from torch._subclasses.fake_tensor import FakeTensorMode

    T, B, C = 4, 3, 2
    args = [torch.randn(C), torch.randn(C), torch.randn(T, B, C, dtype=torch.bfloat16),
            torch.randn(T, B, C, dtype=torch.bfloat16), None]
    for save in (False, True):
        real = torch.ops.snnkit.wkv_forward(*args, False, save, False, "sync")
        with FakeTensorMode() as mode:
            fake = torch.ops.snnkit.wkv_forward(*[None if a is None else mode.from_tensor(a) for a in args],
                                                False, save, False, "sync")
        for r, f in zip(real, fake):
            assert (r.shape, r.dtype) == (f.shape, f.dtype)
        if save:
            gy = torch.randn(T, B, C, dtype=torch.bfloat16)
            real_b = torch.ops.snnkit.wkv_backward(*args[:4], None, real[2], gy, None, False)
            with FakeTensorMode() as mode:
                fa = [mode.from_tensor(a) for a in (*args[:4], real[2], gy)]
                fake_b = torch.ops.snnkit.wkv_backward(*fa[:4], None, fa[4], fa[5], None, False)
            for r, f in zip(real_b, fake_b):
                assert (r.shape, r.dtype) == (f.shape, f.dtype)
