"""Benchmark the multi-step LIF op against SpikingJelly 2.0's LIFNode on the same device, side by side.

For each (T, N, dtype): forward and forward+backward times (median of timed repeats, every case timed interleaved
with the others in one process, so that a noisy machine slows them alike), the bytes saved for backward (counted with
``torch.autograd.graph.saved_tensors_hooks``, so both libraries are measured the same way), on CUDA the peak allocated
memory, and the achieved fraction of memory bandwidth, counted from the bytes the kernels must move (forward: read x,
write spikes and the save; backward: read dL/ds and the save, write dL/dx) against the GPU's peak (CUDA) or the
measured bandwidth of a copy into an existing buffer (CPU). The incoming gradient (ones) is made once per case,
outside the timed region: on CPU a fresh multi-MB tensor per call would time page faults, not the op.

On CPU the snnkit columns are the plain loop (``backend="torch"``, exact and compact storage) and the fused path
(``backend="fused"``, exact storage, compiled by torch.compile); the fused path's first-call latency (compile) is
measured in fresh processes, once with an empty inductor cache and once with the cache the first one left.

    python scripts/bench_lif.py                      # full grid on CUDA, a CPU-sized grid on CPU
    python scripts/bench_lif.py --T 16 --N 20 --dtype float32 --out bench_lif.json
    python scripts/bench_lif.py --device cpu --T 16 --N 20 --repeats 9   # the CPU target point, with the fused path

Prints a table of ratios (SpikingJelly time / snnkit time: > 1 means snnkit is faster) and writes JSON with the device
name, torch/triton/spikingjelly versions and every measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

import torch

import snnkit
from snnkit import surrogate
from snnkit.benchmark import cuda_peak_bytes, environment, median_ms, package_version, time_interleaved, write_json

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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
    peak = cuda_peak_bytes(fn, device)
    return None if peak is None else peak / 2**20


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
    """What a plain device copy achieves: the practical ceiling for a memory-bound kernel. On CPU a copy into an
    existing buffer (a fresh one would also measure page faults), bytes read plus bytes written."""
    a = torch.ones(2**28, dtype=torch.uint8, device=device)
    if device == "cuda":
        ms = median_ms(lambda: a.clone(), device, 10)
    else:
        b = torch.zeros_like(a)
        ms = median_ms(lambda: b.copy_(a), device, 10)
    return 2 * a.numel() / (ms * 1e-3) / 1e9


_FIRST_CALL = """
import time, torch, snnkit
t0 = time.perf_counter()
x = torch.randn(16, 4096, dtype=getattr(torch, {dtype!r}), requires_grad=True)
s, _ = snnkit.ops.lif_multistep(x, tau=2.0, surrogate=snnkit.surrogate.Sigmoid(4.0), backend="fused")
s.backward(torch.ones_like(s))
print(time.perf_counter() - t0)
"""


def _first_call_s(dtype_name: str) -> dict:
    """Seconds of the fused path's first forward+backward in a fresh process: empty inductor cache, then warm."""
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        for name in ("cold_cache", "warm_cache"):
            try:
                out = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(dtype=dtype_name)], env=env,
                                     capture_output=True, text=True, check=True, timeout=600)
                result[name] = float(out.stdout.strip().splitlines()[-1])
            except Exception as e:  # reported, not fatal
                result[name] = None
                result[f"{name}_error"] = f"{type(e).__name__}: {e}"[:200]
    return result


def _snnkit_case(x, storage, backend="auto"):
    def fwd():
        with torch.no_grad():
            snnkit.ops.lif_multistep(x, tau=2.0, surrogate=surrogate.Sigmoid(4.0), storage=storage, backend=backend)

    def fwd_only_graph():
        xr = x.detach().requires_grad_()
        return snnkit.ops.lif_multistep(xr, tau=2.0, surrogate=surrogate.Sigmoid(4.0), storage=storage,
                                        backend=backend)

    def fwd_bwd():
        s, _ = fwd_only_graph()
        s.backward(grad)

    grad = torch.ones_like(x)  # the incoming gradient is an input of the op: made once, outside the timing
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
        s.backward(grad)

    grad = torch.ones_like(x)

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
                # On CPU "exact"/"compact" are the plain loop; "auto" would take the fused path at large T x N.
                plain = "torch" if device == "cpu" else "auto"
                cases = {"snnkit_exact": _snnkit_case(x, "exact", plain),
                         "snnkit_compact": _snnkit_case(x, "compact", plain)}
                if device == "cpu" and not args.no_fused:
                    cases["snnkit_fused"] = _snnkit_case(x, "exact", "fused")
                if not args.no_spikingjelly:
                    cases["spikingjelly"] = _spikingjelly_case(x)
                runnable = {}
                for name, (fwd, fwd_bwd, graph) in cases.items():
                    try:
                        fwd_bwd()  # a peer that cannot run a case is reported, not fatal
                        row[f"{name}_saved_bytes_per_neuron_step"] = _saved_bytes(graph) / (T * N)
                        row[f"{name}_peak_mib"] = _peak_mib(fwd_bwd, device)
                        runnable[name] = (fwd, fwd_bwd)
                    except Exception as e:
                        row[f"{name}_error"] = f"{type(e).__name__}: {e}"[:200]
                for kind, i in (("fwd", 0), ("fwdbwd", 1)):
                    for name, ms in time_interleaved({n: f[i] for n, f in runnable.items()}, device,
                                                      args.repeats).items():
                        row[f"{name}_{kind}_ms"] = ms
                for storage in ("exact", "compact", "fused"):
                    ms = row.get(f"snnkit_{storage}_fwdbwd_ms")
                    if ms:
                        gbs = _kernel_bytes(T, N, x.element_size(), storage) / (ms * 1e-3) / 1e9
                        row[f"snnkit_{storage}_fwdbwd_gbs"] = gbs
                        ceiling = peak_bw if device == "cuda" else copy_bw
                        if ceiling:
                            row[f"snnkit_{storage}_bw_fraction"] = gbs / ceiling
                results.append(row)
                del x
                if device == "cuda":
                    torch.cuda.empty_cache()
                _print_row(row)
    first_call = {}
    if device == "cpu" and not args.no_fused:
        for dtype_name in args.dtype:
            first_call[dtype_name] = _first_call_s(dtype_name)
            print(f"fused first forward+backward ({dtype_name}, fresh process): "
                  f"{first_call[dtype_name].get('cold_cache')} s with an empty inductor cache, "
                  f"{first_call[dtype_name].get('warm_cache')} s with a warm one", flush=True)
    return {
        "benchmark": "lif_multistep vs spikingjelly LIFNode",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(device),
        "spikingjelly": package_version("spikingjelly"),
        "peak_bandwidth_gbs": peak_bw,
        "copy_bandwidth_gbs": copy_bw,
        "fused_first_call_s": first_call or None,
        "timing": f"median of {args.repeats} interleaved repeats",
        "surrogate": "Sigmoid(alpha=4)",
        "results": results,
    }


_HEADER_PRINTED = False


def _print_row(row: dict) -> None:
    global _HEADER_PRINTED
    cols = ["T", "N", "dtype", "sj fwd", "exact fwd", "fused fwd", "sj f+b", "exact f+b", "compact f+b",
            "fused f+b", "x f+b exact", "x f+b compact", "x f+b fused", "fused bw", "saved B sj/ex/cp"]
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
    bw = row.get("snnkit_fused_bw_fraction")
    vals = [row["T"], f"2^{row['N'].bit_length() - 1}", row["dtype"], g("spikingjelly_fwd_ms"),
            g("snnkit_exact_fwd_ms"), g("snnkit_fused_fwd_ms"), g("spikingjelly_fwdbwd_ms"),
            g("snnkit_exact_fwdbwd_ms"), g("snnkit_compact_fwdbwd_ms"), g("snnkit_fused_fwdbwd_ms"),
            ratio("spikingjelly_fwdbwd_ms", "snnkit_exact_fwdbwd_ms"),
            ratio("spikingjelly_fwdbwd_ms", "snnkit_compact_fwdbwd_ms"),
            ratio("spikingjelly_fwdbwd_ms", "snnkit_fused_fwdbwd_ms"), f"{bw:.0%}" if bw else "n/a", saved]
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
    p.add_argument("--no-fused", action="store_true", help="CPU: skip the fused path (e.g. without a C++ compiler)")
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
    write_json(args.out, report)
    print(f"\n{report['device']}; torch {report['torch']}, triton {report['triton']}, spikingjelly "
          f"{report['spikingjelly']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
