"""LSM, LSM+STDP and NALSM (Ivanov & Michmizos, NeurIPS 2021) on offline data: accuracy and branching factor.

Data: scikit-learn's bundled 8x8 digits (64 inputs, Poisson-coded with the reference code's rate normalisation,
250 ms per sample; 80/20 split with ``--seed``) or snnkit's bundled spoken digits (700 cochlea channels pooled by 5
to 140 inputs, ``--bin-ms`` bins, one liquid step per bin, 250 steps, a bin with any spike is one spike).

Protocol (the paper's): build the liquid; for LSM+STDP and NALSM run the unsupervised initialisation phase (every
training sample once, 20 steps each, weights carried over -> ``W_INI``); then present every sample from ``W_INI``
with plasticity on for 250 steps; the spike counts feed a linear softmax readout (Adam) trained on the training
split and scored on the test split. The branching factor is measured on ``--bf-samples`` test samples.

    python scripts/run_nalsm.py --dataset digits --grid 10 10 10 --astrocyte on --stdp on     # one variant
    python scripts/run_nalsm.py --dataset digits --all --out docs/nalsm_digits                # the three
    python scripts/run_nalsm.py --dataset spoken-digits --all --out docs/nalsm_spoken_digits

With ``--all`` it writes ``<out>.json`` (every number and the settings) and ``<out>.png`` (branching factor over
the initialisation phase of LSM+STDP and NALSM).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date

import torch

from snnkit.models import LiquidStateMachine, normalise_rates

VARIANTS = {"LSM": (False, False), "LSM+STDP": (False, True), "NALSM": (True, True)}


def load(dataset: str, time_steps: int, seed: int, bin_ms: float):
    """``(x_train [T, n, C], y_train, x_test, y_test)``: binary spikes, time-first."""
    g = torch.Generator().manual_seed(seed)
    if dataset == "spoken-digits":
        from snnkit import data

        out = []
        for split in ("train", "test"):
            ds = data.SpokenDigits(split=split, dt_ms=bin_ms, channel_pool=5, max_duration_ms=time_steps * bin_ms)
            x, y = data.pad_collate([ds[i] for i in range(len(ds))])
            x = (x[:time_steps] > 0).float()
            if x.shape[0] < time_steps:  # every recording shorter than the window: pad with silence
                x = torch.cat([x, x.new_zeros(time_steps - x.shape[0], *x.shape[1:])])
            perm = torch.randperm(x.shape[1], generator=g)  # the initialisation sees the classes mixed
            out += [x[:, perm], y[perm]]
        return tuple(out)
    from sklearn.datasets import (
        load_digits,  # scikit-learn's bundled 8x8 digits: no download
    )

    digits = load_digits()
    rates = normalise_rates(torch.tensor(digits.data, dtype=torch.float32))
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(labels), generator=g)
    cut = int(0.8 * len(order))
    spikes = LiquidStateMachine.encode(rates, time_steps, generator=g)
    return spikes[:, order[:cut]], labels[order[:cut]], spikes[:, order[cut:]], labels[order[cut:]]


def states_of(lsm: LiquidStateMachine, x: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([lsm(x[:, i:i + batch]) for i in range(0, x.shape[1], batch)])


def run_variant(name: str, args, x_tr, y_tr, x_te, y_te) -> dict:
    astro, stdp = VARIANTS[name]
    n_in = x_tr.shape[-1]
    lsm = LiquidStateMachine(n_in, tuple(args.grid), astrocyte=astro, stdp=stdp, seed=args.seed, astro_w=args.astro_w)
    probe = x_te[:, : args.bf_samples]
    t0 = time.perf_counter()
    n_init = x_tr.shape[1] if args.init_samples is None else min(args.init_samples, x_tr.shape[1])
    history = lsm.initialise(x_tr[:, :n_init], probe=probe, probe_every=args.probe_every) if stdp else []
    t_init = time.perf_counter() - t0
    bf = history[-1][1] if history else lsm.branching_factor(probe)
    t1 = time.perf_counter()
    s_tr, s_te = states_of(lsm, x_tr, args.batch), states_of(lsm, x_te, args.batch)
    t_states = time.perf_counter() - t1
    readout = lsm.fit_readout(s_tr, y_tr, epochs=args.readout_epochs, seed=args.seed)
    res = {
        "variant": name, "astro_w": lsm.astro_w if astro else None, "neurons": lsm.n_neurons, "synapses": lsm.num_synapses,
        "branching_factor": bf, "bf_history": history,
        "train_accuracy": readout.accuracy(s_tr, y_tr), "test_accuracy": readout.accuracy(s_te, y_te),
        "mean_rate_per_ms": float(s_te.mean() / x_te.shape[0]),
        "init_samples": n_init if stdp else 0, "init_s": round(t_init, 1), "states_s": round(t_states, 1),
    }
    print(f"{name:9s} bf={bf:.3f} test acc={res['test_accuracy']:.4f} train acc={res['train_accuracy']:.4f} "
          f"rate={res['mean_rate_per_ms']:.4f}/ms init {t_init:.0f}s states {t_states:.0f}s", flush=True)
    return res


def plot(results: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for r in results:
        if r["bf_history"]:
            xs, ys = zip(*r["bf_history"])
            ax.plot(xs, ys, marker="o", ms=3, label=r["variant"])
        else:
            ax.axhline(r["branching_factor"], ls=":", color="gray", label=f"{r['variant']} (no plasticity)")
    ax.axhspan(0.85, 1.15, color="green", alpha=0.1, label="[0.85, 1.15]")
    ax.axhline(1.0, color="green", lw=0.8)
    ax.set_xlabel("initialisation samples seen")
    ax.set_ylabel("branching factor")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("digits", "spoken-digits"), default="digits")
    p.add_argument("--grid", type=int, nargs=3, default=[10, 10, 10], metavar=("X", "Y", "Z"))
    p.add_argument("--astrocyte", choices=("on", "off"), default="on")
    p.add_argument("--stdp", choices=("on", "off"), default="on")
    p.add_argument("--all", action="store_true", help="run LSM, LSM+STDP and NALSM (ignores --astrocyte/--stdp)")
    p.add_argument("--astro-w", type=float, default=None,
                   help="astrocyte coupling w_astro (default: the paper's 0.015 * 1000 / neurons)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-steps", type=int, default=250)
    p.add_argument("--bin-ms", type=float, default=2.0, help="spoken digits: input bin per liquid step")
    p.add_argument("--init-samples", type=int, default=None, help="initialisation samples (default: all train)")
    p.add_argument("--probe-every", type=int, default=200)
    p.add_argument("--bf-samples", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--readout-epochs", type=int, default=300)
    p.add_argument("--limit", type=int, default=None, help="use only the first N train and N/4 test samples")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write <out>.json (and <out>.png with --all)")
    args = p.parse_args(argv)
    if args.astrocyte == "on" and args.stdp == "off" and not args.all:
        p.error("--astrocyte on needs --stdp on: the astrocyte modulates the STDP depression")
    torch.set_num_threads(args.threads)

    x_tr, y_tr, x_te, y_te = load(args.dataset, args.time_steps, args.seed, args.bin_ms)
    if args.limit:
        x_tr, y_tr = x_tr[:, : args.limit], y_tr[: args.limit]
        x_te, y_te = x_te[:, : max(1, args.limit // 4)], y_te[: max(1, args.limit // 4)]
    print(f"{args.dataset}: train {tuple(x_tr.shape)} test {tuple(x_te.shape)} grid {args.grid}", flush=True)
    if args.all:
        names = list(VARIANTS)
    else:
        names = [next(k for k, v in VARIANTS.items() if v == (args.astrocyte == "on", args.stdp == "on"))]
    results = [run_variant(n, args, x_tr, y_tr, x_te, y_te) for n in names]

    print("\n| variant | branching factor | test accuracy | train accuracy |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['branching_factor']:.3f} | {100 * r['test_accuracy']:.2f}% | "
              f"{100 * r['train_accuracy']:.2f}% |")
    if args.out:
        meta = {"dataset": args.dataset, "grid": args.grid, "astro_w": args.astro_w, "seed": args.seed, "time_steps": args.time_steps,
                "train_samples": x_tr.shape[1], "test_samples": x_te.shape[1], "date": str(date.today()),
                "device": f"CPU ({platform.processor() or platform.machine()}), {args.threads} thread(s)",
                "torch": torch.__version__, "command": " ".join(sys.argv)}
        with open(args.out + ".json", "w") as f:
            json.dump({"settings": meta, "results": results}, f, indent=1)
        if len(results) > 1 or results[0]["bf_history"]:
            plot(results, args.out + ".png", f"{args.dataset}, {args.grid[0]}x{args.grid[1]}x{args.grid[2]} liquid")
        print(f"wrote {args.out}.json" + (f" and {args.out}.png" if len(results) > 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
