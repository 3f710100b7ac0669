"""Robustness of an event model: train a spiking MLP on binarised spoken-digit frames (DVS-style 0/1 frames) through
snnkit's training loop, then run the attacks of Lun et al. (CVPR 2025) on it and save the table.

    python scripts/eval_robustness.py --out runs --samples 100
    python scripts/eval_robustness.py --run runs/robust-mlp --attacks sda --samples 100   # an existing run

The run directory is an ordinary ``snnkit train`` run: ``snnkit attack <run> --binarize`` evaluates it as well.
"""

from __future__ import annotations

import argparse
import time

import torch

from snnkit import attacks, data
from snnkit.training import DataBundle, TrainConfig, train

DEFAULT_ATTACKS = ("fgsm,pgd,pgd-atan,pgd-sigmoid,pgd-triangle,pgd-rectangle,pdsg-fgsm,pdsg-pgd,sda")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="attack this existing run instead of training one")
    p.add_argument("--out", default="runs", help="where the new run goes")
    p.add_argument("--name", default="robust-mlp", help="run name")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attacks", default=DEFAULT_ATTACKS)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--tag", default="", help="suffix of the saved table's file names")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run = args.run
    if run is None:
        train_set = attacks.Binarised(data.SpokenDigits("train"))
        test_set = attacks.Binarised(data.SpokenDigits("test"))
        frames, _ = train_set[0]
        bundle = DataBundle(train_set, test_set, tuple(frames.shape[1:]), data.SpokenDigits.num_classes)
        cfg = TrainConfig(dataset="spoken-digits", out=args.out, name=args.name, epochs=args.epochs, seed=args.seed)
        start = time.perf_counter()
        result = train(cfg, data=bundle, progress=False)
        print(f"trained {result.run_dir} in {time.perf_counter() - start:.0f} s: test accuracy "
              f"{100 * result.test_acc:.2f}%")
        run = result.run_dir
    settings = attacks.AttackSettings(eps=args.eps, steps=args.steps, max_iter=args.max_iter, seed=args.seed)
    start = time.perf_counter()
    table, paths = attacks.attack_run(run, args.attacks.split(","), samples=args.samples, settings=settings,
                                      binarize=True, progress=None)
    if args.tag:
        paths = attacks.save_table(table, paths["json"].parent, stem=f"robustness-{args.tag}")
    print(table)
    print(f"{time.perf_counter() - start:.0f} s; saved " + ", ".join(str(v) for v in paths.values()))


if __name__ == "__main__":
    main()
