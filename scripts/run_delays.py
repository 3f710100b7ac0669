"""Learned vs fixed random vs no synaptic delays (Hammouamri et al. ICLR 2024) with the same network and budget.

For each delay mode and seed: ``DelaySNN.for_dataset(dataset, delays=mode)`` trained by
:func:`snnkit.training.fit` with :func:`snnkit.training.delay_recipe` (two optimisers, sigma schedule, position
clamping, softmax-sum loss; evaluated with integer delays). Only the delays differ between the modes: "learned"
starts from uniform random positions and learns them, "random" keeps uniform random integer delays, "zero" has none.

    python scripts/run_delays.py                                          # bundled spoken digits, 3 seeds
    python scripts/run_delays.py --epochs 30 --seeds 0 1 2 --out docs/bench/delays_spoken_digits.json
    python scripts/run_delays.py --dataset shd --root ~/data --epochs 150 --batch-size 256 --device cuda

Prints a table (test accuracy after the last epoch, mean +- std over seeds) and writes JSON with every run's
per-epoch history, the settings, the device and the torch version.
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from snnkit.models import DelaySNN
from snnkit.models.delay_snn import DATASET_CONFIGS, DELAY_MODES
from snnkit.training import TrainConfig, build_datasets, delay_recipe, fit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="spoken-digits", choices=sorted(DATASET_CONFIGS))
    p.add_argument("--root", default="datasets", help="data root for shd/ssc (spoken digits are bundled)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--modes", nargs="+", default=list(DELAY_MODES), choices=DELAY_MODES)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train-batches", type=int, default=None, help="cap on batches per epoch (quick checks)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="override a DelaySNN argument of the dataset's configuration, e.g. hidden=[64] (repeatable)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", default=None, help="JSON file to write (default: none)")
    args = p.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.model_arg:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            p.error(f"--model-arg: expected KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    args.overrides = overrides
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be positive")
    return args


def run_one(args: argparse.Namespace, bundle, mode: str, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)  # the same initial weights for every mode at a given seed
    model = DelaySNN.for_dataset(args.dataset, delays=mode, **args.overrides)
    steps = len(bundle.train) // args.batch_size + (len(bundle.train) % args.batch_size > 0)
    if args.max_train_batches is not None:
        steps = min(steps, args.max_train_batches)
    t0 = time.perf_counter()
    result = fit(model, bundle.train, test_data=bundle.test, epochs=args.epochs, batch_size=args.batch_size,
                 max_train_batches=args.max_train_batches, seed=seed, device=args.device, progress=False,
                 **delay_recipe(model, args.epochs, steps).fit_kwargs())
    return {
        "mode": mode,
        "seed": seed,
        "test_acc": result.test_accuracy,
        "train_acc": result.history[-1]["train_acc"],
        "best_test_acc": max(r["test_acc"] for r in result.history),
        "seconds": time.perf_counter() - t0,
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": result.history,
    }


def summarise(runs: list[dict[str, Any]], modes: list[str]) -> list[dict[str, Any]]:
    rows = []
    for mode in modes:
        accs = [r["test_acc"] for r in runs if r["mode"] == mode]
        rows.append({
            "mode": mode,
            "seeds": len(accs),
            "test_acc_mean": statistics.fmean(accs),
            "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "test_acc": accs,
            "train_acc_mean": statistics.fmean(r["train_acc"] for r in runs if r["mode"] == mode),
            "seconds_per_run": statistics.fmean(r["seconds"] for r in runs if r["mode"] == mode),
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| delays | seeds | test accuracy (%) | per seed | train accuracy (%) | s / run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        per_seed = ", ".join(f"{100 * a:.1f}" for a in r["test_acc"])
        lines.append(f"| {r['mode']} | {r['seeds']} | {100 * r['test_acc_mean']:.2f} +- {100 * r['test_acc_std']:.2f} "
                     f"| {per_seed} | {100 * r['train_acc_mean']:.1f} | {r['seconds_per_run']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = build_datasets(TrainConfig(dataset=args.dataset, root=args.root, device="cpu"))
    runs = []
    for seed in args.seeds:
        for mode in args.modes:
            run = run_one(args, bundle, mode, seed)
            print(f"seed {seed} {mode:>7}: test {100 * run['test_acc']:.2f}%  train {100 * run['train_acc']:.2f}%  "
                  f"({run['seconds']:.0f} s)", flush=True)
            runs.append(run)
    rows = summarise(runs, args.modes)
    print(table(rows))
    device = torch.device(args.device)
    report = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_train_batches": args.max_train_batches,
        "model": {**DATASET_CONFIGS[args.dataset], **args.overrides},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": args.threads,
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": rows,
        "runs": runs,
    }
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
