"""Measure data-loading rate (samples/s) of snnkit.data.SHD: tonic, the disk cache and the binned-frame store.

Without ``--root`` it writes synthetic files in SHD's HDF5 layout (700 channels, ~1 s recordings, spike counts drawn
around ``--spikes`` per sample, float16 times as in the published files) to a temporary folder; with ``--root`` it
reads a real ``<root>/SHD/shd_<split>.h5``. Modes, each over the same samples:

* ``items, no cache``     dataset[i] for every i (tonic HSD read + binning + pooling)
* ``cache, cold``         first pass with ``cache=True``: binning plus writing the cache (tonic.DiskCachedDataset)
* ``cache, warm``         second pass: reading the cached frames
* ``loader, no cache``    data.loader(batch_size, shuffle) batches, padded time-first, for each worker count
* ``loader, cache warm``  the same reading the warm cache
* ``store, build``        first pass with ``store=``: binning every recording into the binned-frame store
* ``store <mode>, loader``  data.loader batches from a warm store held in RAM (memory) or memory-mapped (disk),
  averaged over ``--store-epochs`` shuffled epochs; ``store memory, device=cpu`` asks the loader for the device
  (the whole store resident there, batches gathered there; with ``--device cuda`` the same on a GPU)
* ``store <mode>, gather``  the store's batch assembly alone (``dataset.store.batch(indices)``), no DataLoader

    python scripts/bench_data.py                             # 512 synthetic samples
    python scripts/bench_data.py --root ~/data --split test  # real SHD
    python scripts/bench_data.py --samples 2048 --workers 0 2 4 --out bench_data.json

Prints a table and writes JSON with the machine name, CPU, versions and every measurement.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import tonic
import torch

import snnkit
from snnkit import data
from snnkit.benchmark import cpu_model, write_json


def write_synthetic_shd(path: Path, n_samples: int, mean_spikes: int, seed: int) -> None:
    """SHD layout: spikes/times (vlen float16 s), spikes/units (vlen uint16), labels, extra/keys, extra/speaker."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        times = file.create_dataset("spikes/times", (n_samples,), dtype=h5py.vlen_dtype(np.float16))
        units = file.create_dataset("spikes/units", (n_samples,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n_samples):
            count = max(1, int(rng.normal(mean_spikes, mean_spikes / 4)))
            times[i] = np.sort(rng.uniform(0.0, rng.uniform(0.6, 1.4), count)).astype(np.float16)
            units[i] = rng.integers(0, 700, count).astype(np.uint16)
        file["labels"] = rng.integers(0, 20, n_samples).astype(np.uint8)
        file["extra/keys"] = np.array([f"class-{k}".encode() for k in range(20)])
        file["extra/speaker"] = rng.integers(0, 12, n_samples).astype(np.uint8)


def rate_items(dataset: torch.utils.data.Dataset) -> float:
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return len(dataset) / (time.perf_counter() - start)


def rate_loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int) -> float:
    loader = data.loader(dataset, batch_size=batch_size, shuffle=True, seed=0, num_workers=workers)
    start = time.perf_counter()
    seen = sum(y.shape[0] for _, y in loader)
    return seen / (time.perf_counter() - start)


def rate_store_loader(
    dataset: torch.utils.data.Dataset, batch_size: int, epochs: int, device: str | None
) -> float:
    loader = data.loader(dataset, batch_size=batch_size, shuffle=True, seed=0, device=device)
    for _ in loader:  # warm-up epoch: the device copy of the store, the page cache, first-call costs
        pass
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for x, y in loader:
            seen += y.shape[0]
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def rate_gather(dataset: data.SHD, batch_size: int, epochs: int) -> float:
    store = dataset.store
    assert store is not None
    generator = torch.Generator().manual_seed(0)
    for batch in torch.randperm(len(store), generator=generator).split(batch_size):  # warm-up epoch
        store.batch(batch)
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for batch in torch.randperm(len(store), generator=generator).split(batch_size):
            seen += store.batch(batch).y.shape[0]
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="data root with SHD/shd_<split>.h5 (default: synthetic files)")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--samples", type=int, default=512, help="synthetic samples (without --root)")
    parser.add_argument("--spikes", type=int, default=8000, help="mean spikes per synthetic sample")
    parser.add_argument("--dt-ms", type=float, default=10.0)
    parser.add_argument("--channel-pool", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--store-epochs", type=int, default=5, help="epochs averaged for the store rows")
    parser.add_argument("--device", default="cpu", help="device of the store's device row (cpu, cuda, ...)")
    parser.add_argument("--out", type=Path, default=Path("bench_data.json"))
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="snnkit_bench_data_"))
    try:
        if args.root is None:
            root = scratch / "data"
            write_synthetic_shd(root / "SHD" / f"shd_{args.split}.h5", args.samples, args.spikes, seed=0)
            source = f"synthetic SHD layout, {args.samples} samples, ~{args.spikes} spikes each"
        else:
            root = args.root
            source = f"{root}/SHD/shd_{args.split}.h5"
        kwargs = dict(split=args.split, dt_ms=args.dt_ms, channel_pool=args.channel_pool)
        cache_dir = scratch / "cache"
        plain = data.SHD(root, **kwargs)
        frames = [plain[i][0] for i in range(min(len(plain), 64))]
        rows: list[dict[str, object]] = []

        def record(mode: str, workers: int | None, rate: float) -> None:
            rows.append({"mode": mode, "workers": workers, "samples_per_s": round(rate, 1)})
            print(f"  {mode:<22} {'' if workers is None else workers:>7} {rate:>12.1f}", flush=True)

        print(f"snnkit.data.SHD loading rate: {source}; dt {args.dt_ms} ms, pool {args.channel_pool}")
        print(f"  {'mode':<22} {'workers':>7} {'samples/s':>12}")
        record("items, no cache", None, rate_items(plain))
        cold = data.SHD(root, cache=True, cache_dir=cache_dir, **kwargs)
        record("cache, cold", None, rate_items(cold))
        warm = data.SHD(root, cache=True, cache_dir=cache_dir, **kwargs)
        record("cache, warm", None, rate_items(warm))
        for workers in args.workers:
            record("loader, no cache", workers, rate_loader(plain, args.batch_size, workers))
            record("loader, cache warm", workers, rate_loader(warm, args.batch_size, workers))

        start = time.perf_counter()
        data.SHD(root, cache_dir=cache_dir, store="disk", **kwargs)
        record("store, build", None, len(plain) / (time.perf_counter() - start))
        for mode in ("memory", "disk"):
            stored = data.SHD(root, cache_dir=cache_dir, store=mode, **kwargs)
            record(f"store {mode}, loader", 0, rate_store_loader(stored, args.batch_size, args.store_epochs, None))
            record(f"store {mode}, gather", None, rate_gather(stored, args.batch_size, args.store_epochs))
        stored = data.SHD(root, cache_dir=cache_dir, store="memory", **kwargs)
        rate = rate_store_loader(stored, args.batch_size, args.store_epochs, args.device)
        record(f"store memory, device={args.device}", 0, rate)

        result = {
            "benchmark": "snnkit.data SHD loading rate",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.node(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "versions": {
                "snnkit": snnkit.__version__,
                "torch": torch.__version__,
                "tonic": tonic.__version__,
                "h5py": h5py.__version__,
                "numpy": np.__version__,
            },
            "source": source,
            "samples": len(plain),
            "mean_frames_per_sample": float(np.mean([f.shape[0] for f in frames])),
            "params": {
                "dt_ms": args.dt_ms, "channel_pool": args.channel_pool, "batch_size": args.batch_size,
                "store_epochs": args.store_epochs, "device": args.device,
            },
            "rows": rows,
        }
        write_json(args.out, result)
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
