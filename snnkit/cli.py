"""``snnkit <command>`` console entry (``python -m snnkit``, ``scripts/train.py``, and torchrun all land here).

Commands:
    train   train a model on a dataset, or ``--resume runs/<run>`` a stopped run.

Defaults train the spiking MLP on the bundled spoken digits on CPU in a few minutes and print the final test
accuracy. ``torchrun --nproc-per-node N -m snnkit train ...`` trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "train_command", "build_parser"]


def _number(parse, ok, what: str):
    """An argparse ``type=``: parse ``text`` with ``parse`` and require ``ok(value)``; errors say ``what``."""

    def check(text: str):
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {v}")
        return v

    return check


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0, "a positive number")  # NaN fails v > 0


# Settings a resumed run may change: they do not influence the numbers it computes.
_RESUME_OVERRIDABLE = ("device", "workers", "root", "download")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from snnkit.training.config import DATASETS, TrainConfig

    d = TrainConfig()
    # Every default is None here and filled from TrainConfig afterwards, so that with --resume we can tell which
    # flags the user actually typed.
    p.add_argument("--dataset", choices=DATASETS, default=None, help=f"dataset (default {d.dataset})")
    p.add_argument("--root", default=None, help=f"data root for shd/ssc/cifar10dvs (default {d.root})")
    p.add_argument(
        "--model", default=None, help="model name (see --list-models); default: vgg for cifar10dvs, else mlp"
    )
    p.add_argument("--epochs", type=_positive_int, default=None, help=f"training epochs (default {d.epochs})")
    p.add_argument(
        "--batch-size", type=_positive_int, default=None, help=f"batch size per process (default {d.batch_size})"
    )
    p.add_argument(
        "--lr", type=_positive_float, default=None, help=f"peak learning rate, AdamW + cosine (default {d.lr})"
    )
    p.add_argument("--weight-decay", type=float, default=None, help=f"AdamW weight decay (default {d.weight_decay})")
    p.add_argument("--device", default=None, help="auto (CUDA if available), cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--seed", type=int, default=None, help=f"seed for weights, dropout and shuffling (default {d.seed})")
    p.add_argument("--out", default=None, help=f"parent directory of run directories (default {d.out}/)")
    p.add_argument("--name", default=None, help="run directory name (default <dataset>-<model>-s<seed>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument(
        "--time-steps",
        type=_positive_int,
        default=None,
        help="frames per sample for cifar10dvs (default 10); audio datasets: crop recordings to this many --dt-ms bins",
    )
    p.add_argument(
        "--size", type=_positive_int, default=None, help=f"frame side in pixels, cifar10dvs (default {d.size})"
    )
    p.add_argument("--dt-ms", type=_positive_float, default=None, help=f"time bin in ms, shd/ssc (default {d.dt_ms:g})")
    p.add_argument("--amp", action="store_true", default=None, help="bf16 autocast on CUDA")
    p.add_argument(
        "--download", action="store_true", default=None,
        help="let tonic download missing shd/ssc/cifar10dvs files into --root (default: never touch the network)",
    )
    p.add_argument(
        "--workers", type=_nonneg_int, default=None, help=f"DataLoader worker processes (default {d.workers})"
    )
    p.add_argument(
        "--ckpt-every",
        type=_nonneg_int,
        default=None,
        help=f"also checkpoint every N batches, 0 = epoch ends only (default {d.ckpt_every})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")


def build_parser() -> argparse.ArgumentParser:
    """The ``snnkit`` argument parser (sub-commands)."""
    parser = argparse.ArgumentParser(prog="snnkit", description="snnkit: spiking neural networks for PyTorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser(
        "train",
        help="train a model (or --resume a run)",
        description="Train a spiking network. Defaults: spiking MLP on the bundled spoken digits, CPU-friendly.",
    )
    _add_train_args(train)
    # The sub-parser travels with the parsed args so that errors found after parsing are reported in its usage.
    train.set_defaults(_parser=train)
    return parser


def train_command(argv: Sequence[str] | None = None, prog: str = "snnkit train") -> int:
    """``snnkit train`` with ``argv`` (without the word "train"); returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description="Train a spiking network (see `snnkit train -h`).")
    _add_train_args(parser)
    args = parser.parse_args(argv)
    return _run_train(args, parser)


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from snnkit import models
    from snnkit.training import CheckpointError, TrainConfig, resume, train

    if args.list_models:
        print("\n".join(models.available()))
        return 0
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("command", "_parser", "resume", "no_progress", "list_models")
    }
    progress = not args.no_progress
    # Keep the error surface flat: what a user can fix gets one line naming the problem, no traceback.
    try:
        start = time.perf_counter()
        if args.resume:
            ignored = sorted(set(given) - set(_RESUME_OVERRIDABLE))
            if ignored:
                flags = ", ".join("--" + k.replace("_", "-") for k in ignored)
                print(f"note: resuming with the run's saved configuration; ignoring {flags}", file=sys.stderr)
            overrides = {k: given[k] for k in _RESUME_OVERRIDABLE if k in given}
            result = resume(args.resume, overrides=overrides, progress=progress)
        else:
            if "model" in given and given["model"] != "auto" and given["model"] not in models.available():
                parser.error(f"unknown model {given['model']!r}; valid: {', '.join(models.available())}")
            cfg = TrainConfig(**given)
            result = train(cfg, progress=progress)
        elapsed = time.perf_counter() - start
    except CheckpointError as e:
        raise SystemExit(f"snnkit train: error: {e}") from None
    except (ValueError, FileNotFoundError, OSError) as e:
        # Dataset not found / corrupt (snnkit.data errors subclass these) and invalid settings.
        raise SystemExit(f"snnkit train: error: {e}") from None
    except KeyboardInterrupt:  # the trainer has already printed how to resume
        return 130
    if result.rank == 0:
        h = result.history[-1] if result.history else {}
        print(
            f"\nFinal test accuracy: {100 * result.test_acc:.2f}%  (test loss {result.test_loss:.4f}, "
            f"{result.epochs} epochs, train accuracy {100 * h.get('train_acc', float('nan')):.2f}%, "
            f"{elapsed:.0f} s)\nRun directory: {result.run_dir}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``snnkit``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return _run_train(args, args._parser)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
