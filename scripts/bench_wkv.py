"""Benchmark the WKV op (RWKV-4 / SpikeGPT): forward+backward time of the Triton kernels against the PyTorch loop.

For each (T, dtype) at batch B and C channels, the median time of one forward and of one forward+backward
(gradients for w, u, k, v), timed round-robin with the other implementations in one process so that a noisy machine
slows them alike:

- ``triton``: ``snnkit.ops.wkv(backend="triton")`` (CUDA only);
- ``torch``: ``snnkit.ops.wkv(backend="torch")``, the PyTorch path (one vectorised step per token, hand-written
  backward; what CPU tensors run);
- ``loop``: ``snnkit.ops.wkv.wkv_naive``, the plain PyTorch loop with autograd deriving the backward (the reference
  the GPU target is stated against);
- ``fla``: flash-linear-attention's RWKV-4 kernel ``fla.ops.rwkv4.fused_recurrent_rwkv4`` (CUDA, when the package
  is installed), fed its native batch-first layout and ``time_decay = log(-w)``.

The incoming gradient is made once per case, outside the timed region. On CUDA the peak memory allocated by one
forward+backward is reported too. Targets on a GPU (SpikeGPT issue): ``triton`` at least 50x faster than ``loop`` at
T = 1024 (B = 8, C = 768) and no slower than ``fla``.

    python scripts/bench_wkv.py                                   # B=8, C=768, T in {256, 1024, 4096} on CUDA
    python scripts/bench_wkv.py --device cpu --B 2 --C 64 --T 64 256 --threads 1   # reduced sizes on CPU
    python scripts/bench_wkv.py --loop-max-T 1024                 # skip the autograd loop beyond T = 1024

Prints a table (times in ms, and ``loop`` time / each implementation's time) and writes JSON with the device name.
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime, timezone

import torch

from snnkit.benchmark import cuda_peak_bytes, environment, time_interleaved, write_json
from snnkit.ops import wkv
from snnkit.ops.wkv import wkv_naive

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _peak_mib(fn, device: str) -> float | None:
    peak = cuda_peak_bytes(fn, device)
    return None if peak is None else peak / 2**20


def _fla():
    try:
        from fla.ops.rwkv4 import fused_recurrent_rwkv4
    except Exception:  # not installed, or an incompatible build
        return None
    return fused_recurrent_rwkv4


def _inputs(T: int, B: int, C: int, dtype: torch.dtype, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    # SpikeGPT's initialisation range: time_decay in [-5, 3] -> w = -exp(time_decay), time_first near ln 0.3
    w = -torch.exp(torch.linspace(-5, 3, C))
    u = math.log(0.3) + 0.5 * torch.randn(C, generator=g)
    k = torch.randn(T, B, C, generator=g)
    v = torch.randn(T, B, C, generator=g)
    return (w.to(device), u.to(device), k.to(device, dtype), v.to(device, dtype))


def _cases(T, B, C, dtype, device, with_loop: bool, fla_fn):
    """name -> (forward, forward+backward) callables on fresh leaf copies of the same inputs."""
    w, u, k, v = _inputs(T, B, C, dtype, device)
    gy = torch.randn(T, B, C, device=device, dtype=dtype)
    impls = {}
    if device == "cuda":
        impls["triton"] = lambda w, u, k, v: wkv(w, u, k, v, backend="triton", check="off")[0]
    impls["torch"] = lambda w, u, k, v: wkv(w, u, k, v, backend="torch", check="off")[0]
    if with_loop:
        impls["loop"] = lambda w, u, k, v: wkv_naive(w, u, k, v)[0]
    cases = {}
    for name, f in impls.items():
        leaves = [t.clone().requires_grad_() for t in (w, u, k, v)]

        def fwd(f=f, leaves=leaves):
            with torch.no_grad():
                f(*leaves)

        def fwd_bwd(f=f, leaves=leaves):
            torch.autograd.grad(f(*leaves), leaves, gy)

        cases[name] = (fwd, fwd_bwd)
    if fla_fn is not None and device == "cuda":
        decay = torch.log(-w)  # fla applies w = -exp(time_decay) itself
        kb, vb, gb = (t.transpose(0, 1).contiguous() for t in (k, v, gy))
        state = torch.zeros(B, 3, 1, C, device=device, dtype=torch.float32)
        state[:, 2] = -1e38
        leaves = [t.clone().requires_grad_() for t in (decay, u, kb, vb)]

        def fla_fwd():
            with torch.no_grad():
                fla_fn(*leaves, state)

        def fla_fwd_bwd():
            torch.autograd.grad(fla_fn(*leaves, state)[0], leaves, gb)

        cases["fla"] = (fla_fwd, fla_fwd_bwd)
    return cases


def main(argv=None) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if cuda else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--B", type=int, default=8)
    p.add_argument("--C", type=int, default=768)
    p.add_argument("--T", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=list(DTYPES))
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 20 CUDA, 3 CPU)")
    p.add_argument("--loop-max-T", type=int, default=None, help="time the autograd loop only up to this T")
    p.add_argument("--no-fla", action="store_true", help="skip flash-linear-attention even if installed")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--out", default="bench_wkv.json", help="JSON output path")
    a = p.parse_args(argv)
    if a.device == "cuda" and not cuda:
        p.error("--device cuda but no CUDA device is available")
    if a.threads:
        torch.set_num_threads(a.threads)
    repeats = a.repeats or (20 if a.device == "cuda" else 3)
    fla_fn = None if a.no_fla else _fla()
    rows = []
    for dtype_name in a.dtype:
        for T in a.T:
            with_loop = a.loop_max_T is None or T <= a.loop_max_T
            cases = _cases(T, a.B, a.C, DTYPES[dtype_name], a.device, with_loop, fla_fn)
            fwd = time_interleaved({n: c[0] for n, c in cases.items()}, a.device, repeats)
            both = time_interleaved({n: c[1] for n, c in cases.items()}, a.device, repeats)
            row = {"T": T, "B": a.B, "C": a.C, "dtype": dtype_name, "forward_ms": fwd, "forward_backward_ms": both,
                   "peak_mib": {n: _peak_mib(c[1], a.device) for n, c in cases.items()} if a.device == "cuda"
                   else None}
            if "loop" in both:
                row["loop_over"] = {n: both["loop"] / ms for n, ms in both.items()}
            if "fla" in both and "triton" in both:
                row["fla_over_triton"] = both["fla"] / both["triton"]
            rows.append(row)
            cells = "  ".join(f"{n} {fwd[n]:9.2f} / {both[n]:9.2f}" for n in both)
            speed = "  ".join(f"loop/{n} {x:7.1f}x" for n, x in row.get("loop_over", {}).items() if n != "loop")
            print(f"{dtype_name:9s} T={T:5d}  fwd / fwd+bwd ms: {cells}  {speed}", flush=True)
    result = {
        "benchmark": "wkv",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(a.device),
        "fla": None if fla_fn is None else "fla.ops.rwkv4.fused_recurrent_rwkv4",
        "repeats": repeats,
        "rows": rows,
    }
    write_json(a.out, result, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
