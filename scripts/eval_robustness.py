"""Robustness of an event model: train a spiking MLP on binarised spoken-digit frames (DVS-style 0/1 frames) through
snnkit's training loop, then run the attacks of Lun et al. (CVPR 2025) on it and save the table.

    python scripts/eval_robustness.py --out runs --samples 100
    python scripts/eval_robustness.py --run runs/robust-mlp --attacks sda --samples 100   # an existing run
    # a deeper victim trained with another surrogate, several radii and victim seeds (docs/BENCHMARKS.md):
    python scripts/eval_robustness.py --hidden 256,256,256 --surrogate sigmoid --seeds 0,1,2 \\
        --eps 2/255,4/255,8/255 --attacks pgd,pgd-atan,pgd-sigmoid,pgd-triangle,pgd-rectangle,pdsg-pgd \\
        --summary docs/bench/robustness_deep_sigmoid.json
    # a victim without BatchNorm (its potentials keep scales of their own per layer and feature):
    python scripts/eval_robustness.py --norm none --hidden 256,256,256 --seeds 0,1,2 --eps 2/255,4/255,8/255 \\
        --attacks pgd,pgd-sigmoid,pgd-triangle,pgd-rectangle,pdsg-pgd --summary runs/nobn3_atan.json

The run directory is an ordinary ``snnkit train`` run: ``snnkit attack <run> --binarize`` evaluates it as well (for
a victim trained with ``--surrogate`` other than atan, ``snnkit attack`` rebuilds it with ATan: only the white-box
rows ``fgsm``/``pgd`` differ, every guessed-surrogate and PDSG row swaps the surrogate anyway). The victim's
training surrogate (and ``--norm``, ``--hidden``) is written to ``<run>/victim.json`` and used again by ``--run``.
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import torch

from snnkit import attacks, data
from snnkit.attacks.evaluate import FIXED_SURROGATES
from snnkit.data import loader as data_loader
from snnkit.training import Callback, DataBundle, TrainConfig, train

DEFAULT_ATTACKS = ("fgsm,pgd,pgd-atan,pgd-sigmoid,pgd-triangle,pgd-rectangle,pdsg-fgsm,pdsg-pgd,sda")


class UseSurrogate(Callback):
    """Train with ``surrogate`` in every spiking neuron (the model is built with ATan; no random numbers used)."""

    def __init__(self, surrogate) -> None:
        self.surrogate = surrogate

    def on_train_start(self, trainer) -> None:
        set_surrogate(trainer.model, self.surrogate)


def set_surrogate(model: torch.nn.Module, surrogate) -> None:
    for m in attacks.spiking_neurons(model):
        m.surrogate = surrogate


def parse_eps(text: str) -> list[float]:
    """``"2/255,0.5"`` -> ``[2/255, 0.5]``."""
    return [float(Fraction(v.strip())) for v in text.split(",") if v.strip()]


def eps_tag(eps: float) -> str:
    k = eps * 255
    return f"eps{round(k)}" if abs(k - round(k)) < 1e-6 else f"eps{eps:g}"


def victim_label(hidden: str, norm: str) -> str:
    """``"256,256"`` with norm ``"batch"`` -> ``"256,256"``; with ``"none"`` -> ``"256,256, no BN"``."""
    return hidden if norm == "batch" else f"{hidden}, no BN" if norm == "none" else f"{hidden}, norm {norm}"


def summary_markdown(summary: list[dict]) -> str:
    """Per victim setting and radius: each attack's ASR per victim seed and the mean over seeds (Markdown). Rows of
    summaries written before ``--norm`` existed are BatchNorm victims."""
    groups: dict[tuple, list[dict]] = {}
    for r in summary:
        key = (victim_label(r["hidden"], r.get("norm", "batch")), r["surrogate"], r.get("batch", 1), r["eps"])
        groups.setdefault(key, []).append(r)
    names = list(dict.fromkeys(a for r in summary for a in r["asr"]))
    lines = ["| victim (hidden, surrogate) | batch | eps | seeds (attacked) | " + " | ".join(names) + " |",
             "|" + "---|" * (4 + len(names))]
    for (hidden, sg, batch, eps), rows in groups.items():
        cells = []
        for a in names:
            v = [r["asr"][a] for r in rows if a in r["asr"]]
            cells.append(f"{sum(v) / len(v):.1f} ({', '.join(f'{x:.1f}' for x in v)})" if v else "")
        seeds = ", ".join(f"{r['seed']} ({r['attacked']})" for r in rows)
        lines.append(f"| {hidden}, {sg} | {batch} | {round(eps * 255)}/255 | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="attack this existing run instead of training one")
    p.add_argument("--out", default="runs", help="where the new run goes")
    p.add_argument("--name", default="robust-mlp", help="run name (with several --seeds: <name>-s<seed>)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0, help="victim seed (weights, dropout, data order) and attack seed")
    p.add_argument("--seeds", help="comma-separated victim seeds: train and attack one victim per seed")
    p.add_argument("--hidden", help="hidden layer widths of the spiking MLP, e.g. 256,256,256 (default 256,256)")
    p.add_argument("--norm", choices=("batch", "none"), help="normalisation before each LIF layer of the spiking MLP: "
                   "batch (SeqBatchNorm1d, default) or none (no BatchNorm, Linear with bias)")
    p.add_argument("--lr", type=float, help="peak learning rate of the victim's training (default: TrainConfig's)")
    p.add_argument("--surrogate", default="atan", choices=sorted(FIXED_SURROGATES),
                   help="the victim's training surrogate (parameters as the pgd-<name> guesses)")
    p.add_argument("--attacks", default=DEFAULT_ATTACKS)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--eps", default=str(8 / 255), help="L-inf radius, or several comma-separated (fractions allowed: "
                   "2/255,4/255,8/255); one table per radius")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--batch", type=int, default=1, help="samples per attack batch (PDSG's sigma spans the batch; "
                   "Lun et al. attack FGSM/PGD in batches of 256, SDA one sample at a time)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--tag", default="", help="suffix of the saved table's file names")
    p.add_argument("--summary", help="also write every victim's ASR per attack and radius to this JSON file")
    p.add_argument("--report", nargs="+", metavar="JSON", help="only print the ASR table of saved --summary files")
    args = p.parse_args(argv)
    if args.report:
        print(summary_markdown([r for f in args.report for r in json.loads(Path(f).read_text())]))
        return
    torch.set_num_threads(args.threads)
    eps_list = parse_eps(args.eps)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    if args.run is not None and len(seeds) > 1:
        p.error("--run attacks one existing run; --seeds trains several")
    summary = []
    for seed in seeds:
        run, surrogate, hidden, norm = args.run, args.surrogate, args.hidden or "256,256", args.norm or "batch"
        test_acc = None
        if run is None:
            train_set = attacks.Binarised(data.SpokenDigits("train"))
            test_set = attacks.Binarised(data.SpokenDigits("test"))
            frames, _ = train_set[0]
            bundle = DataBundle(train_set, test_set, tuple(frames.shape[1:]), data.SpokenDigits.num_classes)
            kwargs = {"hidden": [int(h) for h in args.hidden.split(",")]} if args.hidden else {}
            if args.norm:
                kwargs["norm"] = args.norm
            name = f"{args.name}-s{seed}" if args.seeds else args.name
            cfg = TrainConfig(dataset="spoken-digits", out=args.out, name=name, epochs=args.epochs, seed=seed,
                              lr=args.lr, model_kwargs=kwargs)
            callbacks = [] if surrogate == "atan" else [UseSurrogate(FIXED_SURROGATES[surrogate])]
            start = time.perf_counter()
            result = train(cfg, data=bundle, callbacks=callbacks, progress=False)
            print(f"trained {result.run_dir} ({surrogate} surrogate) in {time.perf_counter() - start:.0f} s: test "
                  f"accuracy {100 * result.test_acc:.2f}%")
            run, test_acc = result.run_dir, result.test_acc
            victim = {"surrogate": surrogate, **kwargs, "norm": norm, "epochs": args.epochs, "lr": args.lr,
                      "test_accuracy": result.test_acc}
            (Path(run) / "victim.json").write_text(json.dumps(victim) + "\n")
        elif (Path(run) / "victim.json").is_file():
            victim = json.loads((Path(run) / "victim.json").read_text())
            surrogate = victim["surrogate"]
            hidden = ",".join(str(h) for h in victim.get("hidden", [256, 256]))
            norm = victim.get("norm", "batch")
            test_acc = victim.get("test_accuracy")
        if args.run is not None and args.norm is not None and args.norm != norm:
            p.error(f"--norm {args.norm}: the run {run} was trained with norm {norm}")
        model, bundle = attacks.load_run(run)
        set_surrogate(model, FIXED_SURROGATES[surrogate])
        for eps in eps_list:
            settings = attacks.AttackSettings(eps=eps, steps=args.steps, max_iter=args.max_iter, seed=seed)
            start = time.perf_counter()
            table = attacks.evaluate(model, data_loader(attacks.Binarised(bundle.test), batch_size=args.batch,
                                                                      shuffle=False),
                                     args.attacks.split(","), samples=args.samples, settings=settings)
            stem = "robustness" + "".join(f"-{t}" for t in (args.tag, eps_tag(eps) if len(eps_list) > 1 else "")
                                          if t)
            paths = attacks.save_table(table, Path(run) / "attacks", stem=stem)
            print(f"{run}, victim surrogate {surrogate}, norm {norm}, eps {eps:.6g}:")
            print(table)
            print(f"{time.perf_counter() - start:.0f} s; saved " + ", ".join(str(v) for v in paths.values()))
            summary.append({"run": str(run), "seed": seed, "surrogate": surrogate, "batch": args.batch,
                            "hidden": hidden, "norm": norm, "eps": eps, "test_accuracy": test_acc,
                            "clean_accuracy": table.clean_accuracy,
                            "attacked": table.correct,
                            "asr": {r["attack"]: r["asr"] for r in table.rows},
                            "seconds_per_sample": {r["attack"]: r["seconds_per_sample"] for r in table.rows}})
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"saved {args.summary}")
    print("ASR % per attack: mean over victim seeds (each seed)")
    print(summary_markdown(summary))


if __name__ == "__main__":
    main()
