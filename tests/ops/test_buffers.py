"""The CPU output-buffer pool of the fused paths (``snnkit/ops/_buffers.py``): memory is reused only once no tensor,
view or autograd save refers to it, and the LIF op's results are unchanged when its outputs come from the pool."""

from __future__ import annotations

import pytest
import torch

import snnkit.ops as ops
from snnkit.ops._buffers import CPUBufferPool
from snnkit.ops.lif import fused_cpu

MiB = 2**20


def test_memory_is_reused_only_when_nothing_refers_to_it() -> None:
    pool = CPUBufferPool(min_bytes=MiB)
    a = pool.empty((MiB // 4,), torch.float32)
    ptr = a.data_ptr()
    b = pool.empty((MiB // 4,), torch.float32)
    assert b.data_ptr() != ptr  # a is alive
    view = a[10:].view(-1, 2)
    del a
    c = pool.empty((MiB // 4,), torch.float32)
    assert c.data_ptr() != ptr  # a view of it is alive
    del view
    d = pool.empty((2, MiB // 8), torch.float32)  # same bytes, other shape
    assert d.data_ptr() == ptr and d.shape == (2, MiB // 8) and d.is_contiguous()
    e = pool.empty((MiB // 2,), torch.bfloat16)  # same bytes, other dtype: b's memory once b is gone
    assert e.data_ptr() not in (ptr, b.data_ptr(), c.data_ptr())
    assert pool.pooled_bytes == 4 * MiB


def test_small_requests_and_requests_past_the_cap_are_not_pooled() -> None:
    pool = CPUBufferPool(min_bytes=MiB, max_bytes=2 * MiB)
    small = pool.empty((16,), torch.float32)
    assert small.numel() == 16 and pool.pooled_bytes == 0
    held = [pool.empty((MiB // 4,), torch.float32) for _ in range(3)]
    assert pool.pooled_bytes == 2 * MiB  # the third came from fresh memory
    assert len({t.data_ptr() for t in held}) == 3
    del held
    assert pool.release() == 2 * MiB and pool.pooled_bytes == 0


def test_release_keeps_buffers_in_use() -> None:
    pool = CPUBufferPool(min_bytes=MiB)
    kept = pool.empty((MiB // 4,), torch.float32)
    pool.empty((MiB // 4,), torch.float32)  # dropped at once
    assert pool.release() == MiB
    kept.fill_(3.0)  # still valid memory
    assert pool.pooled_bytes == MiB and float(kept[-1]) == 3.0


@pytest.mark.skipif(not fused_cpu.available(), reason="no working C++ compiler for torch.compile")
def test_fused_lif_outputs_and_saves_survive_later_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small problems use pooled buffers here, so two forward passes alive at once must not share memory: the first
    # call's spikes and saved potentials must be intact when its backward runs after the second call.
    monkeypatch.setattr(fused_cpu, "BUFFERS", CPUBufferPool(allocate=fused_cpu._fresh, min_bytes=1))
    g = torch.Generator().manual_seed(0)
    x1 = (torch.randn(6, 4, 33, generator=g) + 0.5).requires_grad_()
    x2 = (torch.randn(6, 4, 33, generator=g) + 0.5).requires_grad_()
    ref1, _ = ops.lif_multistep(x1, backend="torch")
    (ref_grad,) = torch.autograd.grad(ref1.sum(), x1)
    s1, _ = ops.lif_multistep(x1, backend="fused")
    s1_copy = s1.detach().clone()
    for _ in range(3):  # later calls, their outputs dropped: their buffers go back to the pool and are reused
        s2, _ = ops.lif_multistep(x2, backend="fused")
        s2.sum().backward()
        del s2
    assert fused_cpu.BUFFERS.pooled_bytes > 0
    assert torch.equal(s1, s1_copy) and torch.equal(s1, ref1)
    (grad,) = torch.autograd.grad(s1.sum(), x1)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6)
