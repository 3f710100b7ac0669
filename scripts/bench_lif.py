"""Benchmark the multi-step LIF op against SpikingJelly 2.0's LIFNode on the same device, side by side.

For each (T, N, dtype): forward and forward+backward times (median of timed repeats), the bytes saved for backward
(counted with ``torch.autograd.graph.saved_tensors_hooks``, so both libraries are measured the same way), and on CUDA
the peak allocated memory and the achieved fraction of memory bandwidth, counted from the bytes the kernels must move
(forward: read x, write spikes and the save; backward: read dL/ds and the save, write dL/dx).

    python scripts/bench_lif.py                      # full grid on CUDA, a CPU-sized grid on CPU
    python scripts/bench_lif.py --T 16 --N 20 --dtype float32 --out bench_lif.json

Prints a table of ratios (SpikingJelly time / snnkit time: > 1 means snnkit is faster) and writes JSON with the device
name, torch/triton/spikingjelly versions and every measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import torch

import snnkit
from snnkit import surrogate

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up: kernel compilation, allocator
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _saved_bytes(fn) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def _peak_mib(fn, device: str) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _peak_bandwidth_gbs(device: str) -> float | None:
    if device != "cuda":
        return None
    p = torch.cuda.get_device_properties(0)
    clock_khz = getattr(p, "memory_clock_rate", None)
    bus_bits = getattr(p, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9  # double data rate


def _copy_bandwidth_gbs(device: str) -> float | None:
    """What a plain device copy achieves: the practical ceiling for a memory-bound kernel."""
    if device != "cuda":
        return None
    a = torch.empty(2**28, dtype=torch.uint8, device=device)
    ms = _time(lambda: a.clone(), device, 10)
    return 2 * a.numel() / (ms * 1e-3) / 1e9


def _snnkit_case(x, storage):
    def fwd():
        with torch.no_grad():
            snnkit.ops.lif_multistep(x, tau=2.0, surrogate=surrogate.Sigmoid(4.0), storage=storage)

    def fwd_only_graph():
        xr = x.detach().requires_grad_()
        return snnkit.ops.lif_multistep(xr, tau=2.0, surrogate=surrogate.Sigmoid(4.0), storage=storage)

    def fwd_bwd():
        s, _ = fwd_only_graph()
        s.backward(torch.ones_like(s))

    return fwd, fwd_bwd, fwd_only_graph


def _spikingjelly_case(x):
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based import surrogate as sj_surrogate

    node = neuron.LIFNode(tau=2.0, surrogate_function=sj_surrogate.Sigmoid(alpha=4.0), step_mode="m")

    def fwd():
        with torch.no_grad():
            node.reset()
            node(x)

    def fwd_only_graph():
        node.reset()
        return node(x.detach().requires_grad_())

    def fwd_bwd():
        s = fwd_only_graph()
        s.backward(torch.ones_like(s))

    return fwd, fwd_bwd, fwd_only_graph


def _kernel_bytes(T: int, N: int, elem: int, storage: str) -> int:
    save = 2 if storage == "compact" else 4
    return T * N * (2 * elem + save) + T * N * (2 * elem + save)  # forward + backward


def run(args) -> dict:
    device = args.device
    results = []
    peak_bw = _peak_bandwidth_gbs(device)
    copy_bw = _copy_bandwidth_gbs(device)
    for dtype_name in args.dtype:
        dtype = DTYPES[dtype_name]
        for T in args.T:
            for log_n in args.N:
                N = 2**log_n
                x = torch.randn(T, N, device=device).to(dtype) + 0.5
                row = {"T": T, "N": N, "dtype": dtype_name}
                cases = {"snnkit_exact": _snnkit_case(x, "exact"), "snnkit_compact": _snnkit_case(x, "compact")}
                if not args.no_spikingjelly:
                    cases["spikingjelly"] = _spikingjelly_case(x)
                for name, (fwd, fwd_bwd, graph) in cases.items():
                    try:
                        row[f"{name}_fwd_ms"] = _time(fwd, device, args.repeats)
                        row[f"{name}_fwdbwd_ms"] = _time(fwd_bwd, device, args.repeats)
                        row[f"{name}_saved_bytes_per_neuron_step"] = _saved_bytes(graph) / (T * N)
                        row[f"{name}_peak_mib"] = _peak_mib(fwd_bwd, device)
                    except Exception as e:  # a peer that cannot run a case is reported, not fatal
                        row[f"{name}_error"] = f"{type(e).__name__}: {e}"[:200]
                for storage in ("exact", "compact"):
                    ms = row.get(f"snnkit_{storage}_fwdbwd_ms")
                    if ms and device == "cuda":
                        gbs = _kernel_bytes(T, N, x.element_size(), storage) / (ms * 1e-3) / 1e9
                        row[f"snnkit_{storage}_fwdbwd_gbs"] = gbs
                        if peak_bw:
                            row[f"snnkit_{storage}_bw_fraction"] = gbs / peak_bw
                results.append(row)
                del x
                if device == "cuda":
                    torch.cuda.empty_cache()
                _print_row(row)
    return {
        "benchmark": "lif_multistep vs spikingjelly LIFNode",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU: {platform.processor() or platform.machine()}"
        f" ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "triton": _version("triton"),
        "spikingjelly": _version("spikingjelly"),
        "snnkit": snnkit.__version__,
        "peak_bandwidth_gbs": peak_bw,
        "copy_bandwidth_gbs": copy_bw,
        "surrogate": "Sigmoid(alpha=4)",
        "results": results,
    }


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:
        return None


_HEADER_PRINTED = False


def _print_row(row: dict) -> None:
    global _HEADER_PRINTED
    cols = ["T", "N", "dtype", "sj fwd", "exact fwd", "sj f+b", "exact f+b", "compact f+b", "x f+b exact",
            "x f+b compact", "saved B sj/ex/cp"]
    if not _HEADER_PRINTED:
        print(" | ".join(f"{c:>13}" for c in cols))
        _HEADER_PRINTED = True

    def g(k):
        v = row.get(k)
        return f"{v:.2f}" if isinstance(v, float) else "n/a"

    def ratio(a, b):
        va, vb = row.get(a), row.get(b)
        return f"{va / vb:.2f}x" if va and vb else "n/a"

    saved = "/".join(f"{row.get(f'{n}_saved_bytes_per_neuron_step', float('nan')):.1f}"
                     for n in ("spikingjelly", "snnkit_exact", "snnkit_compact"))
    vals = [row["T"], f"2^{row['N'].bit_length() - 1}", row["dtype"], g("spikingjelly_fwd_ms"),
            g("snnkit_exact_fwd_ms"), g("spikingjelly_fwdbwd_ms"), g("snnkit_exact_fwdbwd_ms"),
            g("snnkit_compact_fwdbwd_ms"), ratio("spikingjelly_fwdbwd_ms", "snnkit_exact_fwdbwd_ms"),
            ratio("spikingjelly_fwdbwd_ms", "snnkit_compact_fwdbwd_ms"), saved]
    print(" | ".join(f"{str(v):>13}" for v in vals), flush=True)


def main(argv=None) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if cuda else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--T", type=int, nargs="+", default=None, help="time steps (default 4 16 64; CPU: 4 16)")
    p.add_argument("--N", type=int, nargs="+", default=None,
                   help="log2 of neurons x batch (default 16 20 22; CPU: 16 20)")
    p.add_argument("--dtype", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 20 CUDA, 3 CPU)")
    p.add_argument("--no-spikingjelly", action="store_true", help="skip the peer (e.g. where it is not installed)")
    p.add_argument("--out", default="bench_lif.json", help="JSON output path")
    args = p.parse_args(argv)
    if args.device == "cuda" and not cuda:
        p.error("--device cuda but CUDA is not available")
    on_cpu = args.device == "cpu"
    args.T = args.T or ([4, 16] if on_cpu else [4, 16, 64])
    args.N = args.N or ([16, 20] if on_cpu else [16, 20, 22])
    args.repeats = args.repeats or (3 if on_cpu else 20)
    if any(t < 1 for t in args.T) or any(not 0 <= n <= 26 for n in args.N):
        p.error("--T must be >= 1 and --N (log2) in [0, 26]")
    report = run(args)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n{report['device']}; torch {report['torch']}, triton {report['triton']}, spikingjelly "
          f"{report['spikingjelly']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
