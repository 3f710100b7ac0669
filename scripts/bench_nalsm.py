"""Throughput of the NALSM liquid: samples/s at batch 1 and batch 64 for NALSM1000 and NALSM8000.

Every sample is a 250 ms presentation with astrocyte-modulated STDP on (the paper's protocol), from ``W_INI`` = the
initial weights, on Poisson inputs shaped like the 8x8 digits (64 channels, firing probabilities from the reference
code's normalisation of random digit images). Batch 1 presents ``--samples-b1`` samples one after the other; batch 64
presents one batch of 64 samples. One warm-up presentation per configuration is not timed. With ``--threads 1 2``
every configuration runs once per CPU thread count (a batch's chunks run on that many threads at once; a single
sample cannot use more than one).

    python scripts/bench_nalsm.py                              # table + docs/nalsm_bench.json
    python scripts/bench_nalsm.py --sizes 10 --device cuda     # NALSM1000 only, on a GPU

Prints a table and writes JSON with the device name, torch version, threads and every timing.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import torch

from snnkit.benchmark import device_name, sync, write_json
from snnkit.models import LiquidStateMachine, normalise_rates


def inputs(n: int, time_steps: int, device: torch.device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    try:  # the digits when scikit-learn is there, else random images with the same normalisation
        from sklearn.datasets import load_digits

        images = torch.tensor(load_digits().data[:n], dtype=torch.float32)
    except ImportError:
        images = torch.rand(n, 64, generator=g) * 16
    rates = normalise_rates(images)
    return LiquidStateMachine.encode(rates, time_steps, generator=g).to(device)


def bench(lsm: LiquidStateMachine, x: torch.Tensor, batch: int, samples: int, device: torch.device) -> dict:
    lsm(x[:20, :batch])  # warm-up (short: the first call pays one-time costs only)
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < samples:
        lsm(x[:, done % x.shape[1]: done % x.shape[1] + batch])
        done += batch
    sync(device)
    dt = time.perf_counter() - t0
    return {"batch": batch, "samples": done, "seconds": round(dt, 3), "samples_per_s": done / dt}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 20], help="grid edge: 10 -> 1000, 20 -> 8000")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--samples-b1", type=int, default=8, help="samples timed at batch 1")
    p.add_argument("--time-steps", type=int, default=250)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=[1], help="CPU thread counts to measure")
    p.add_argument("--out", default="docs/nalsm_bench.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    x = inputs(max(args.batches) * 2, args.time_steps, device, 0)
    rows = []
    for size in args.sizes:
        lsm = LiquidStateMachine(64, (size, size, size), astrocyte=True, seed=0).to(device)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in args.batches:
                r = bench(lsm, x, batch, args.samples_b1 if batch == 1 else batch, device)
                r.update(model=f"NALSM{size ** 3}", neurons=size ** 3, synapses=lsm.num_synapses, threads=threads)
                rows.append(r)
                print(f"NALSM{size ** 3:<5d} threads {threads} batch {batch:3d}: {r['samples_per_s']:8.2f} samples/s "
                      f"({r['samples']} samples in {r['seconds']:.1f} s)", flush=True)
    # the reference of every ratio: the smallest batch on one thread (the fewest threads measured)
    print("\n| model | threads | batch | samples/s | speed-up over batch 1, 1 thread |\n|---|---|---|---|---|")
    for r in rows:
        base = next(q for q in rows if q["model"] == r["model"] and q["batch"] == min(args.batches)
                    and q["threads"] == min(args.threads))
        r["speedup_over_batch1"] = r["samples_per_s"] / base["samples_per_s"]
        print(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['samples_per_s']:.2f} | "
              f"{r['speedup_over_batch1']:.2f}x |")
    out = write_json(args.out, {"device": device_name(device), "date": str(date.today()), "torch": torch.__version__,
                                "time_steps": args.time_steps, "threads": args.threads, "cpu_count": os.cpu_count(),
                                "results": rows}, indent=1)
    print(f"wrote {args.out} ({out['device']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
