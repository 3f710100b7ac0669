"""Benchmark BPTT, SLTT and SLTT-K: peak training memory and time per iteration as T grows.

Meng et al. (ICCV 2023) report SLTT's memory constant in T and far below BPTT's. This script trains the spiking VGG
(``snnkit.models.SpikingVGG``, default widths) on random DVS-like frames at 48x48, batch 16, for each T and method, each
configuration in its own process so that peak memory is that configuration's alone:

- CUDA: ``torch.cuda.max_memory_allocated`` over the timed iterations, minus what the model, optimiser and batch hold
  before the first one;
- CPU: the process's peak resident set size (``getrusage``) over the iterations, minus the resident size before them.

    python scripts/bench_sltt.py                                 # T in 2 4 8 16 32, the device's default
    python scripts/bench_sltt.py --device cpu --T 2 4 8 --iters 2 --out docs/bench/bench_sltt_cpu.json

Prints a table (memory in MiB, milliseconds per iteration, and SLTT / BPTT ratios) and writes JSON with the device.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from datetime import datetime, timezone

METHODS = (("bptt", {}), ("sltt", {}), ("sltt-k", {"k": 2}))


def _rss_mib() -> float:
    # Current resident set size, from /proc (Linux); the peak comes from getrusage.
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_one(method: str, args: dict, T: int, batch: int, size: int, iters: int, device: str) -> dict:
    """One configuration, in this process: warm-up iteration, then ``iters`` timed ones."""
    import torch

    from snnkit import models
    from snnkit.benchmark import elapsed_s
    from snnkit.training import METHODS as REGISTRY
    from snnkit.training import StepContext, rate_cross_entropy

    torch.manual_seed(0)
    model = models.build("vgg", (2, size, size), 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    ctx = StepContext(optimizers=[opt], loss_fn=rate_cross_entropy)
    step = REGISTRY.build(method, **args)
    x = (torch.rand(T, batch, 2, size, size, device=device) < 0.1).float()
    y = torch.randint(0, 10, (batch,), device=device)
    step.train_step(model, x, y, ctx)  # warm-up: allocator, first-call costs, optimiser state
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mib()
    times = [elapsed_s(lambda: step.train_step(model, x, y, ctx), device) for _ in range(iters)]
    if device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base  # ru_maxrss is KiB on Linux
    return {"method": method, "args": args, "T": T, "peak_mib": round(max(peak, 0.0), 1),
            "ms_per_iter": round(1e3 * sorted(times)[len(times) // 2], 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--out", default="bench_sltt.json")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one configuration (JSON)
    a = p.parse_args(argv)
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if a.one:
        cfg = json.loads(a.one)
        print(json.dumps(run_one(cfg["method"], cfg["args"], cfg["T"], a.batch, a.size, a.iters, device)))
        return 0
    rows = []
    for T in a.T:
        for method, args in METHODS:
            one = json.dumps({"method": method, "args": args, "T": T})
            cmd = [sys.executable, __file__, "--one", one, "--batch", str(a.batch), "--size", str(a.size),
                   "--iters", str(a.iters), "--device", device]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"T={T:3d} {method:7s} peak {r['peak_mib']:9.1f} MiB  {r['ms_per_iter']:9.1f} ms/iter", flush=True)
    by = {(r["method"], r["T"]): r for r in rows}
    print(f"\n{'T':>4} | {'BPTT MiB':>9} {'SLTT MiB':>9} {'SLTT-K MiB':>10} | {'BPTT ms':>8} {'SLTT ms':>8} "
          f"{'SLTT-K ms':>9} | {'mem SLTT/BPTT':>13} {'time SLTT/BPTT':>14}")
    for T in a.T:
        b, s, k = by["bptt", T], by["sltt", T], by["sltt-k", T]
        print(f"{T:>4} | {b['peak_mib']:9.1f} {s['peak_mib']:9.1f} {k['peak_mib']:10.1f} | {b['ms_per_iter']:8.1f} "
              f"{s['ms_per_iter']:8.1f} {k['ms_per_iter']:9.1f} | {s['peak_mib'] / max(b['peak_mib'], 1e-9):13.2f} "
              f"{s['ms_per_iter'] / b['ms_per_iter']:14.2f}")
    from snnkit.benchmark import device_name, write_json

    result = {
        "benchmark": "bench_sltt", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device, "device_name": device_name(device), "torch": torch.__version__,
        "model": "SpikingVGG default cfg", "batch": a.batch, "size": a.size, "iters": a.iters, "rows": rows,
    }
    write_json(a.out, result, indent=1)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
