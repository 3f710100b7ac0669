"""LIF vs MetaNeuron under three learning rules, read out by spike counts and by Lempel-Ziv complexity.

The comparison of Rudnicka, Szczepanski and Pregowska (2025, arXiv:2508.11674) on data available offline: the
bundled spoken digits (spike trains, cropped to ``--duration-ms``, binarised per 10 ms bin) or scikit-learn's bundled 8x8 digits, Poisson-coded
with :func:`snnkit.encoding.poisson`. For each hidden neuron type (``LIF`` or ``MetaNeuron``, same width) and seed:

- **backprop**: ``Linear -> SeqBatchNorm1d -> neuron -> Dropout -> Linear -> LeakyIntegrator`` trained with
  :func:`snnkit.training.fit` (AdamW, cosine); "rate" = the trained readout, "LZC" = :class:`LZCClassifier` on the
  hidden layer's spike trains.
- **STDP + readout**: :class:`snnkit.plasticity.CompetitiveSTDPLayer` (``Linear`` -> neuron -> k-winners-take-all,
  homeostatic thresholds) trained without labels by STDP, one pass; "rate" = logistic regression on hidden spike
  counts, "LZC" = LZCClassifier on the trains.
- **Tempotron**: :class:`snnkit.plasticity.TempotronClassifier` (one tempotron per class, winner-take-all rule) on
  the trains of that same STDP-trained layer: a purely local pipeline, no backprop anywhere ("rate" column).

    python scripts/compare_neurons.py                                    # spoken digits, 3 seeds
    python scripts/compare_neurons.py --dataset sklearn-digits --seeds 5
    python scripts/compare_neurons.py --out docs/compare_neurons_spoken   # the tables of docs/compare_neurons.md

Writes ``<out>.md`` (a table of mean +- std test accuracy), ``<out>.png`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone

import torch
from torch import nn

from snnkit import data, encoding, plasticity
from snnkit.layers import LeakyIntegrator, SeqBatchNorm1d
from snnkit.neurons import LIF, MetaNeuron
from snnkit.surrogate import ATan
from snnkit.training import fit

NEURONS = ("lif", "meta")


def make_neuron(kind: str, width: int) -> nn.Module:
    if kind == "lif":
        return LIF(tau=2.0, surrogate=ATan(2.0), detach_reset=True)
    return MetaNeuron(width)


class Net(nn.Module):
    def __init__(self, kind: str, n_in: int, width: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_in, width, bias=False)
        self.bn = SeqBatchNorm1d(width)
        self.neuron = make_neuron(kind, width)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(width, classes)
        self.readout = LeakyIntegrator(2.0)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.bn(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.fc2(self.drop(self.hidden(x))))


def load(dataset: str, duration_ms: float, time_steps: int, seed: int):
    """``(x_train [T, N, C], y_train, x_test, y_test)`` as dense tensors."""
    if dataset == "spoken-digits":
        out = []
        for split in ("train", "test"):
            ds = data.SpokenDigits(split=split, max_duration_ms=duration_ms)
            x, y = data.pad_collate([ds[i] for i in range(len(ds))])
            out += [(x > 0).float(), y]  # binary trains: a bin holding any spike is one spike (STDP, LZC need 0/1)
        return tuple(out)
    from sklearn.datasets import (
        load_digits,  # scikit-learn's bundled 8x8 digits: no download
    )

    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    cut = int(0.8 * len(order))
    spikes = encoding.poisson(images, time_steps, max_rate=0.2, generator=g)
    return spikes[:, order[:cut]], labels[order[:cut]], spikes[:, order[cut:]], labels[order[cut:]]


@torch.no_grad()
def hidden_trains(layer: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    outs = []
    for i in range(0, x.shape[1], batch):
        outs.append(layer(x[:, i : i + batch]))
    return torch.cat(outs, dim=1)


def count_readout(train_h, y_train, test_h, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(train_h.sum(0).numpy(), y_train.numpy())
    return float(clf.score(test_h.sum(0).numpy(), y_test.numpy()))


def lzc_readout(train_h, y_train, test_h, y_test) -> float:
    return encoding.LZCClassifier("logistic").fit(train_h, y_train).score(test_h, y_test)


def run_backprop(kind, xs, seed, width, epochs, classes):
    x_tr, y_tr, x_te, y_te = xs
    torch.manual_seed(seed)
    net = Net(kind, x_tr.shape[-1], width, classes)
    train = torch.utils.data.TensorDataset(x_tr.transpose(0, 1), y_tr)
    test = torch.utils.data.TensorDataset(x_te.transpose(0, 1), y_te)
    result = fit(net, train, test_data=test, epochs=epochs, batch_size=32, lr=1e-2, weight_decay=1e-4,
                 scheduler="cosine", seed=seed, progress=False)
    net.eval()
    h_tr, h_te = hidden_trains(net.hidden, x_tr), hidden_trains(net.hidden, x_te)
    return result.test_accuracy, lzc_readout(h_tr, y_tr, h_te, y_te)


def stdp_layer(kind: str, xs, seed: int, width: int, passes: int = 1) -> plasticity.CompetitiveSTDPLayer:
    """A ``CompetitiveSTDPLayer`` (k-WTA, homeostasis, STDP) around the neuron ``kind``, trained without labels."""
    x_tr = xs[0]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    layer = plasticity.CompetitiveSTDPLayer(x_tr.shape[-1], width, make_neuron(kind, width).eval(), generator=g)
    for _ in range(passes):
        order = torch.randperm(x_tr.shape[1], generator=g)
        for i in range(0, x_tr.shape[1], 32):
            layer.learn(x_tr[:, order[i : i + 32]])
    return layer


def run_stdp(layer, xs):
    x_tr, y_tr, x_te, y_te = xs
    h_tr, h_te = hidden_trains(layer, x_tr), hidden_trains(layer, x_te)
    return count_readout(h_tr, y_tr, h_te, y_te), lzc_readout(h_tr, y_tr, h_te, y_te)


def run_tempotron(layer, xs, seed, classes, epochs=20):
    x_tr, y_tr, x_te, y_te = xs
    h_tr, h_te = hidden_trains(layer, x_tr), hidden_trains(layer, x_te)
    g = torch.Generator().manual_seed(seed)
    clf = plasticity.TempotronClassifier(h_tr.shape[-1], classes, generator=g)
    clf.fit(h_tr, y_tr, epochs=epochs, generator=g)
    return clf.score(h_te, y_te)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("spoken-digits", "sklearn-digits"), default="spoken-digits")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30, help="backprop epochs")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--duration-ms", type=float, default=500.0, help="spoken digits: crop recordings (10 ms bins)")
    p.add_argument("--time-steps", type=int, default=50, help="sklearn digits: Poisson steps")
    p.add_argument("--out", default="compare_neurons")
    a = p.parse_args(argv)
    rows = {}  # (rule, readout, neuron) -> [acc per seed]
    t0 = time.time()
    for seed in range(a.seeds):
        xs = load(a.dataset, a.duration_ms, a.time_steps, seed)
        classes = int(max(xs[1].max(), xs[3].max())) + 1
        for kind in NEURONS:
            bp_rate, bp_lzc = run_backprop(kind, xs, seed, a.width, a.epochs, classes)
            layer = stdp_layer(kind, xs, seed, a.width)
            st_rate, st_lzc = run_stdp(layer, xs)
            tempo = run_tempotron(layer, xs, seed, classes)
            for key, acc in ((("backprop", "rate"), bp_rate), (("backprop", "LZC"), bp_lzc),
                             (("STDP + readout", "rate"), st_rate), (("STDP + readout", "LZC"), st_lzc),
                             (("Tempotron", "rate"), tempo)):
                rows.setdefault((*key, kind), []).append(acc)
            print(f"seed {seed} {kind}: backprop {bp_rate:.3f}/{bp_lzc:.3f}  STDP {st_rate:.3f}/{st_lzc:.3f}  "
                  f"Tempotron {tempo:.3f}  ({time.time() - t0:.0f} s)", flush=True)

    def cell(values):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{100 * statistics.mean(values):.1f} +- {100 * spread:.1f}"

    keys = sorted({k[:2] for k in rows}, key=lambda k: (["backprop", "STDP + readout", "Tempotron"].index(k[0]), k[1]))
    lines = ["| rule | readout | LIF | MetaNeuron | Meta - LIF |", "|---|---|---|---|---|"]
    for rule, readout in keys:
        lif, meta = rows[rule, readout, "lif"], rows[rule, readout, "meta"]
        diff = 100 * (statistics.mean(meta) - statistics.mean(lif))
        lines.append(f"| {rule} | {readout} | {cell(lif)} | {cell(meta)} | {diff:+.1f} |")
    table = "\n".join(lines)
    print("\n" + table)
    header = (f"Test accuracy (%) on {a.dataset}, mean +- std over {a.seeds} seeds; hidden width {a.width}; backprop "
              f"{a.epochs} epochs; {datetime.now(timezone.utc):%Y-%m-%d}; `python scripts/compare_neurons.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`.\n\n")
    with open(a.out + ".md", "w") as f:
        f.write(header + table + "\n")
    with open(a.out + ".json", "w") as f:
        json.dump({"args": vars(a), "results": {" / ".join(k): v for k, v in rows.items()}}, f, indent=1)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for j, kind in enumerate(NEURONS):
        means = [100 * statistics.mean(rows[k[0], k[1], kind]) for k in keys]
        errs = [100 * (statistics.stdev(rows[k[0], k[1], kind]) if a.seeds > 1 else 0.0) for k in keys]
        ax.bar([i + 0.4 * j for i in range(len(keys))], means, 0.4, yerr=errs, label="LIF" if j == 0 else "MetaNeuron")
    ax.set_xticks([i + 0.2 for i in range(len(keys))], [f"{r}\n{o}" for r, o in keys], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out + ".png", dpi=100)
    print(f"wrote {a.out}.md, {a.out}.png, {a.out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
