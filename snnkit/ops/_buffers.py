"""Reusable CPU output buffers for the fused CPU paths: a small caching allocator for large outputs.

Why. PyTorch caches GPU memory between calls but not CPU memory: every multi-MB CPU tensor is a fresh ``mmap``, and
its first write faults in (and the kernel zeroes) every page. For the LIF op at T=16, N=2^20 the fused loops
themselves take about 12 ms per forward, while faulting in the fresh spike and save buffers took another 11 ms on a
2-core VM (with transparent huge pages; far more without). A training loop calls the op with the same shapes
every step, so handing the previous step's freed buffers back removes that cost. We deliberately do better than
torch's CPU allocator here, in the one place where it costs the op half its time.

How. Each pooled buffer is a NumPy view of a page-aligned torch byte tensor; a tensor handed out is
``torch.frombuffer`` over it, whose storage holds one reference to the NumPy array for as long as the tensor, any
view of it, or anything autograd saved from it lives. A buffer whose only references are the pool's own is free
and is handed out again (same byte size only, so nothing is split or wasted). Buffers below
:data:`MIN_BYTES` are not pooled (allocation is cheap there), and the pool stops growing at its ``max_bytes``
(further requests get fresh memory). Pooled memory stays with the process: :meth:`CPUBufferPool.release` gives
back every buffer not in use.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["CPUBufferPool", "MIN_BYTES", "MAX_BYTES"]

#: Smallest request served from the pool (4 MiB): below it a fresh allocation costs little.
MIN_BYTES = 4 * 2**20
#: Default cap on the bytes a pool holds (1 GiB).
MAX_BYTES = 2**30



def _refs(arrays: list[np.ndarray], i: int) -> int:
    """``sys.getrefcount`` of ``arrays[i]``, always taken the same way so that its baseline can be measured once."""
    return sys.getrefcount(arrays[i])


# The count of a pooled array that no tensor uses (its list entry plus whatever this interpreter's getrefcount adds;
# measured, not assumed, since interpreters differ). A tensor handed out holds one more reference for as long as it,
# any view of it or any save of it lives (its storage's buffer export).
_IDLE_REFS = _refs([np.empty(0)], 0)


class CPUBufferPool:
    """Hands out uninitialised CPU tensors, reusing the memory of pooled buffers no tensor refers to any more.

    Args:
        allocate: ``allocate(shape, dtype) -> torch.Tensor`` for fresh memory (e.g. with a huge-page hint).
        max_bytes: the most memory the pool keeps; requests beyond it are allocated without pooling.
        min_bytes: requests smaller than this are allocated without pooling.
    """

    def __init__(
        self,
        allocate: Callable[[Sequence[int], torch.dtype], torch.Tensor] | None = None,
        max_bytes: int = MAX_BYTES,
        min_bytes: int = MIN_BYTES,
    ) -> None:
        self._allocate = allocate or (lambda shape, dtype: torch.empty(shape, dtype=dtype))
        self.max_bytes, self.min_bytes = int(max_bytes), int(min_bytes)
        self._by_size: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def pooled_bytes(self) -> int:
        """Bytes the pool holds, in use or not."""
        with self._lock:
            return sum(size * len(arrays) for size, arrays in self._by_size.items())

    def empty(self, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous CPU tensor of ``shape`` and ``dtype`` (like ``torch.empty``)."""
        shape = tuple(int(s) for s in shape)
        numel = math.prod(shape)
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if nbytes < self.min_bytes:
            return self._allocate(shape, dtype)
        with self._lock:
            arrays = self._by_size.setdefault(nbytes, [])
            for i in range(len(arrays)):
                if _refs(arrays, i) == _IDLE_REFS:
                    buffer = arrays[i]
                    break
            else:
                held = sum(size * len(a) for size, a in self._by_size.items())
                if held + nbytes > self.max_bytes:
                    return self._allocate(shape, dtype)
                buffer = self._allocate((nbytes,), torch.uint8).numpy()
                arrays.append(buffer)
            return torch.frombuffer(buffer, dtype=dtype, count=numel).view(shape)

    def release(self) -> int:
        """Drop every buffer no tensor refers to; returns the bytes given back."""
        freed = 0
        with self._lock:
            for size, arrays in self._by_size.items():
                idle = [i for i in range(len(arrays)) if _refs(arrays, i) == _IDLE_REFS]
                freed += size * len(idle)
                for i in reversed(idle):
                    del arrays[i]
        return freed
