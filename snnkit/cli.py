"""``snnkit <command>`` console entry (``python -m snnkit``, ``scripts/train.py``, and torchrun all land here).

Commands:
    train      train a model on a dataset, or ``--resume runs/<run>`` a stopped run.
    attack     attack a trained run.
    train-lm   train a SpikeGPT language model on a text file (default: the built-in corpus), or ``--resume`` one.
    generate   sample text from a ``train-lm`` run.

Defaults train the spiking MLP on the bundled spoken digits on CPU in a few minutes and print the final test
accuracy. ``torchrun --nproc-per-node N -m snnkit train ...`` trains with DistributedDataParallel.

The flags of ``train`` are built from :class:`~snnkit.training.TrainConfig`'s fields, one per field, with the
field's help text and value rule, so every setting of a run has its flag (``--batch-size`` for ``batch_size``).
The keyword-argument fields take repeatable ``--model-arg KEY=VALUE`` and ``--method-arg KEY=VALUE``; VALUE is read
as a Python literal (``hidden=[128,128]``, ``k=2``) or else kept as a plain string (``act=relu``).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Sequence
from dataclasses import MISSING, Field, fields
from typing import Any

__all__ = ["main", "train_command", "build_parser", "train_config"]

# Literal values that fail to parse are taken as plain strings (act=relu), except those that are clearly meant as
# literals: a list, tuple, dict, set or quoted string with a typo is an error rather than a surprising string.
_LITERAL_STARTS = "[({'\""


def _flag(f: Field) -> str:
    """The ``snnkit train`` flag of a TrainConfig field: ``batch_size`` -> ``--batch-size``."""
    return "--" + (f.metadata.get("flag") or f.name.replace("_", "-"))


def _flag_of(name: str) -> str:
    """The flag of the TrainConfig field called ``name``."""
    from snnkit.training.config import TrainConfig

    return next(_flag(f) for f in fields(TrainConfig) if f.name == name)


def _value_type(f: Field, base: type):
    """argparse ``type=`` for a scalar field: parse the text as ``base``, then apply the field's own rule."""
    from snnkit.training.config import check_name, check_value

    meta = f.metadata

    def parse(text: str) -> Any:
        value: Any = text
        if base in (int, float):
            try:
                value = base(text)
            except ValueError:
                what = meta.get("what") or ("an integer" if base is int else "a number")
                raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        try:
            check_value(f, value)
            if meta.get("names") is not None:
                check_name(f, value)  # also where the config accepts any label (datasets passed to train())
        except ValueError as e:
            problem = str(e)
            if meta.get("names") is not None:
                problem = f"invalid choice: {text!r} ({problem})"
            raise argparse.ArgumentTypeError(problem) from None
        return value

    return parse


def _key_value_type(f: Field):
    """argparse ``type=`` for ``KEY=VALUE`` of a keyword-argument field; VALUE is a Python literal or a string."""
    from snnkit.training.config import check_value

    def parse(text: str) -> tuple[str, Any]:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
        head = raw.strip()[:1]
        if not head:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r} (empty VALUE)")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            if head in _LITERAL_STARTS:
                raise argparse.ArgumentTypeError(f"{key}: {raw!r} is not a valid Python literal") from None
            value = raw
        try:
            check_value(f, {key: value})
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return key, value

    return parse


def _sltt_k_type(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {k}")
    return k


def _add_train_args(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`~snnkit.training.TrainConfig` field, from the field's type and metadata."""
    from snnkit.training.config import TrainConfig, field_type

    # Every default is None here and filled from TrainConfig afterwards, so that with --resume we can tell which
    # flags the user actually typed.
    for f in fields(TrainConfig):
        base, _ = field_type(f)
        meta = f.metadata
        default = f.default_factory() if f.default is MISSING else f.default
        text = meta["help"]
        kw: dict[str, Any] = {"dest": f.name, "default": None}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction if default else "store_true"
        elif base is dict:
            kw.update(action="append", type=_key_value_type(f), metavar="KEY=VALUE")
        else:
            kw["type"] = _value_type(f, base)
            if meta.get("names") is not None:
                kw["metavar"] = "{" + ",".join([*meta["also"], *meta["names"]()]) + "}"
            if default is not None:
                text += f" (default {default})"
        p.add_argument(_flag(f), help=text.replace("%", "%%"), **kw)
    p.add_argument(
        "--sltt-k", dest="_sltt_k", metavar="K", default=None, type=_sltt_k_type,
        help="shorthand for --method sltt-k --method-arg k=K (SLTT-K: backward at K random steps per batch)",
    )
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the user typed, as config values (repeated KEY=VALUE flags -> a dict, later wins)."""
    from snnkit.training.config import TrainConfig

    given = {}
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = dict(value) if isinstance(value, list) else value
    k = getattr(args, "_sltt_k", None)
    if k is not None:  # --sltt-k K: the method (unless typed) and its k
        given.setdefault("method", "sltt-k")
        given["method_args"] = {**given.get("method_args", {}), "k": k}
    return given


def _config(given: dict[str, Any], parser: argparse.ArgumentParser):
    """``TrainConfig(**given)``; a value the flags accept but the config rejects is an argparse error on its flag."""
    from snnkit.training.config import ConfigError, TrainConfig

    try:
        return TrainConfig(**given)
    except ConfigError as e:
        parser.error(f"argument {_flag_of(e.field)}: {e.problem}")


def _config_with_run_defaults(given: dict[str, Any], parser: argparse.ArgumentParser, note: bool = False):
    """:func:`_config`, after filling in the model's registered settings for the dataset
    (:func:`snnkit.models.run_defaults`: e.g. the delay SNN's 150 epochs of 256 on SHD) that the user did not type;
    ``note``: say on stderr which ones were applied."""
    from snnkit import models

    cfg = _config(given, parser)
    extra = models.run_defaults(cfg.resolved_model(), cfg.dataset)
    applied: dict[str, Any] = {}
    for name, value in extra.items():
        if name == "model_kwargs":
            missing = {k: v for k, v in value.items() if k not in cfg.model_kwargs}
            if missing:
                applied[name] = {**cfg.model_kwargs, **missing}
        elif name not in given:
            applied[name] = value
    if not applied:
        return cfg
    if note:
        said = ", ".join(
            " ".join(f"--model-arg {k}={v}" for k, v in value.items() if k not in cfg.model_kwargs)
            if name == "model_kwargs" else f"{_flag_of(name)} {value}"
            for name, value in applied.items()
        )
        print(f"note: {cfg.resolved_model()} on {cfg.dataset}: {said} (the model's settings for this dataset; type a "
              "flag to change one)", file=sys.stderr)
    return _config({**given, **applied}, parser)


def train_config(argv: Sequence[str], prog: str = "snnkit train"):
    """The :class:`~snnkit.training.TrainConfig` that ``snnkit train <argv>`` would run (argparse errors exit 2)."""
    parser = argparse.ArgumentParser(prog=prog)
    _add_train_args(parser)
    return _config_with_run_defaults(_given(parser.parse_args(argv)), parser)


def build_parser() -> argparse.ArgumentParser:
    """The ``snnkit`` argument parser (sub-commands)."""
    parser = argparse.ArgumentParser(prog="snnkit", description="snnkit: spiking neural networks for PyTorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # (name, one-line help, description, the function adding the command's arguments)
    commands = [
        ("train", "train a model (or --resume a run)",
         "Train a spiking network. Defaults: spiking MLP on the bundled spoken digits, CPU-friendly.",
         _add_train_args),
        ("attack", "attack a trained run (FGSM, PGD, PDSG, SDA) and save a robustness table",
         "Attack the checkpoint of a `snnkit train` run on its test split; prints the table and saves "
         "robustness.json, robustness.md and robustness.png (under RUN/attacks unless --out is given).",
         _add_attack_args),
        ("train-lm", "train a SpikeGPT language model (or --resume a run)",
         "Train SpikeGPT (spiking RWKV) on a text file, byte-level by default; without --data on the "
         "built-in corpus (Python's help topics, no download). Defaults take a few minutes on a CPU.",
         _add_train_lm_args),
        ("generate", "sample text from a train-lm run",
         "Continue a prompt with the language model of a train-lm run (RNN mode, top-p sampling).",
         _add_generate_args),
    ]
    for name, help_text, description, add_args in commands:
        command = sub.add_parser(name, help=help_text, description=description)
        add_args(command)
        # The sub-parser travels with the parsed args so that errors found after parsing are reported in its usage.
        command.set_defaults(_parser=command)
    return parser


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def _number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """argparse ``type=`` for a finite float in ``[low, high]`` (``(`` / ``)`` where open)."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        ok = math.isfinite(value)
        if low is not None:
            ok = ok and (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
        if not ok:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
            raise argparse.ArgumentTypeError(f"must be a number in {rng}, got {text!r}")
        return value

    return parse


#: train-lm flags: LMConfig field -> (argparse type, metavar, help).
_LM_FLAGS: dict[str, tuple[Any, str, str]] = {
    "data": (str, "FILE", "text file to train on (any bytes with the byte tokenizer; enwik8 works); default: the "
             "built-in corpus (Python's help topics, pydoc_data.topics)"),
    "tokenizer": (str, "{byte,char,FILE}", "byte (UTF-8 bytes, vocabulary 256), char (the corpus' characters; "
                  "UTF-8 text) or a tokenizers file (tokenizer.json)"),
    "n_layer": (_int_at_least(1), "N", "SpikeGPT blocks"),
    "n_embd": (_int_at_least(1), "C", "embedding width"),
    "ctx_len": (_int_at_least(1), "T", "training window in tokens"),
    "dropout": (_number(0, 1, high_open=True), "P", "dropout after each block"),
    "batch_size": (_int_at_least(1), "B", "windows per batch"),
    "epochs": (_int_at_least(1), "N", "epochs (each ends with a held-out evaluation)"),
    "steps_per_epoch": (_int_at_least(1), "N", "optimiser steps per epoch"),
    "lr": (_number(0, low_open=True), "LR", "peak learning rate (Adam, betas 0.9/0.99)"),
    "final_lr": (_number(0, low_open=True), "LR", "learning rate at the end of the exponential decay"),
    "warmup": (_int_at_least(0), "STEPS", "linear warm-up steps"),
    "weight_decay": (_number(0), "WD", "weight decay (> 0: AdamW)"),
    "grad_clip": (_number(0, low_open=True), "NORM", "global gradient-norm clip"),
    "held_out": (_number(0, 1, low_open=True, high_open=True), "FRAC", "fraction of the corpus held out (its end)"),
    "eval_tokens": (_int_at_least(1), "N", "held-out tokens evaluated after each epoch"),
    "seed": (_int_at_least(0), "S", "weights, data order"),
    "device": (str, "DEV", "auto, cpu, cuda, cuda:1, ..."),
    "ckpt_every": (_int_at_least(0), "STEPS", "checkpoint every N steps (and every epoch)"),
    "out": (str, "DIR", "parent directory of new runs"),
    "name": (str, "NAME", "run directory name (default lm-<date>-<time>)"),
}


def _lm_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_train_lm_args(p: argparse.ArgumentParser) -> None:
    from snnkit.training.lm import LMConfig

    defaults = LMConfig()
    for name, (typ, metavar, text) in _LM_FLAGS.items():
        default = getattr(defaults, name)
        if default is not None:
            text += f" (default {default})"
        p.add_argument(_lm_flag(name), dest=name, type=typ, metavar=metavar, default=None, help=text.replace("%", "%%"))
    p.add_argument("--no-amp", dest="no_amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the train-lm run in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory of snnkit train-lm (checkpoint.pt, lm_config.json)")
    p.add_argument("--prompt", default="The ", help="text to continue (default 'The ')")
    p.add_argument("--tokens", type=_int_at_least(0), default=200, help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=_number(0), default=0.8, help="softmax temperature; 0: greedy (default 0.8)")
    p.add_argument("--top-p", type=_number(0, 1, low_open=True), default=0.9,
                   help="nucleus sampling mass in (0, 1] (default 0.9)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="sampling seed (default 0)")
    p.add_argument("--device", default="cpu", help="device to run on (default cpu)")


def _run_train_lm(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from snnkit.training import CheckpointError
    from snnkit.training.lm import LMConfig, LMConfigError, resume_lm, train_lm

    given = {name: getattr(args, name) for name in _LM_FLAGS if getattr(args, name) is not None}
    if args.no_amp:
        given["amp"] = False
    progress = not args.no_progress
    try:
        start = time.perf_counter()
        if args.resume:
            if given:
                flags = ", ".join(_lm_flag(n) if n != "amp" else "--no-amp" for n in sorted(given))
                print(f"note: resuming with the run's saved settings; ignoring {flags}", file=sys.stderr)
            result = resume_lm(args.resume, progress=progress)
        else:
            cfg = LMConfig(**given)
            try:
                cfg.check()
            except LMConfigError as e:
                parser.error(f"argument {_lm_flag(e.field)}: {e.problem}")
            result = train_lm(cfg, progress=progress)
        elapsed = time.perf_counter() - start
    except CheckpointError as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    except KeyboardInterrupt:
        return 130
    if result.rank == 0:
        h = result.history[-1] if result.history else {}
        line = f"\nheld-out bits per token: {h.get('test_bpc', float('nan')):.4f}"
        if "test_bpb" in h:
            line += f" ({h['test_bpb']:.4f} bits per byte)"
        rates = h.get("firing_rates", {})
        if rates:
            line += "\nLIF firing rates: " + ", ".join(f"{n} {r:.3f}" for n, r in rates.items())
        ops = h.get("synops_per_token")
        if ops:
            line += f"\nsynaptic operations per token: {ops['mac']:.4g} MAC, {ops['ac']:.4g} AC"
        print(f"{line}\n{result.epochs} epochs, {elapsed:.0f} s\nRun directory: {result.run_dir}")
    return 0


def _run_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch

    from snnkit.models.spikegpt import generate
    from snnkit.training import CheckpointError
    from snnkit.training.lm import load_lm_run

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"argument --device: {args.device!r} asked for, but CUDA is not available on this machine")
    try:
        model, tok, _ = load_lm_run(args.run, device=args.device)
        try:
            prompt_ids = tok.encode(args.prompt)
        except ValueError as e:
            parser.error(f"argument --prompt: {e}")
        if not prompt_ids:
            parser.error("argument --prompt: the prompt encodes to no tokens; give some text")
        gen = torch.Generator().manual_seed(args.seed)
        new = generate(model, prompt_ids, args.tokens, temperature=args.temperature, top_p=args.top_p, generator=gen)
    except CheckpointError as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    except (ValueError, TypeError, FileNotFoundError, OSError, RuntimeError) as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    print(args.prompt + tok.decode(new))
    return 0


def _add_attack_args(p: argparse.ArgumentParser) -> None:
    from snnkit.attacks import ATTACKS

    p.add_argument("run", help="run directory holding checkpoint.pt (from snnkit train)")
    p.add_argument("--attacks", default="pdsg-pgd,sda",
                   help=f"comma-separated attack names (default pdsg-pgd,sda); valid: {', '.join(ATTACKS.names())}")
    p.add_argument("--samples", type=int, default=100, help="test samples read (default 100)")
    p.add_argument("--eps", type=float, default=8 / 255, help="L-inf radius of FGSM/PGD (default 8/255)")
    p.add_argument("--steps", type=int, default=10, help="PGD iterations (default 10)")
    p.add_argument("--k-init", type=int, default=10, help="SDA's top-k growth per iteration (default 10)")
    p.add_argument("--max-iter", type=int, default=500, help="SDA's generation iterations (default 500)")
    p.add_argument("--l0-threshold", type=int, default=800, help="L0 bound of the ASR@L0<k column (default 800)")
    p.add_argument("--binarize", action="store_true", help="binarise the frames (1 where a bin holds an event)")
    p.add_argument("--seed", type=int, default=0, help="random starts and SDA tie-breaking (default 0)")
    p.add_argument("--out", default=None, help="where to save the table (default RUN/attacks)")


def _run_attack(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from snnkit.attacks import AttackSettings, attack_run
    from snnkit.training import CheckpointError

    try:
        settings = AttackSettings(eps=args.eps, steps=args.steps, k_init=args.k_init, max_iter=args.max_iter,
                                  seed=args.seed)
        table, paths = attack_run(args.run, [a.strip() for a in args.attacks.split(",") if a.strip()],
                                  samples=args.samples, settings=settings, binarize=args.binarize,
                                  l0_threshold=args.l0_threshold, out_dir=args.out)
    except (CheckpointError, ValueError, TypeError, FileNotFoundError, OSError) as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    print(table)
    print("saved " + ", ".join(str(p) for p in paths.values()))
    return 0


def train_command(argv: Sequence[str] | None = None, prog: str = "snnkit train") -> int:
    """``snnkit train`` with ``argv`` (without the word "train"); returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description="Train a spiking network (see `snnkit train -h`).")
    _add_train_args(parser)
    args = parser.parse_args(argv)
    return _run_train(args, parser)


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from snnkit import models
    from snnkit.training import CheckpointError, resume, train
    from snnkit.training.config import RESUME_OVERRIDABLE, ConfigError

    if args.list_models:
        print("\n".join(models.available()))
        return 0
    given = _given(args)
    progress = not args.no_progress
    # Keep the error surface flat: what a user can fix gets one line naming the problem, no traceback.
    try:
        start = time.perf_counter()
        if args.resume:
            ignored = sorted(set(given) - set(RESUME_OVERRIDABLE))
            if ignored:
                flags = ", ".join(_flag_of(name) for name in ignored)
                print(f"note: resuming with the run's saved configuration; ignoring {flags}", file=sys.stderr)
            overrides = {k: given[k] for k in RESUME_OVERRIDABLE if k in given}
            result = resume(args.resume, overrides=overrides, progress=progress)
        else:
            cfg = _config_with_run_defaults(given, parser, note=True)
            result = train(cfg, progress=progress)
        elapsed = time.perf_counter() - start
    except CheckpointError as e:
        raise SystemExit(f"{parser.prog}: error: {e}") from None
    except ConfigError as e:  # a resumed run's saved setting that no longer fits, e.g. a device this machine lacks
        hint = f" (saved with the run; override it with {_flag_of(e.field)})" if e.field in RESUME_OVERRIDABLE else ""
        raise SystemExit(f"{parser.prog}: error: {e}{hint}") from None
    except (ValueError, FileNotFoundError, OSError) as e:
        # Dataset not found / corrupt (snnkit.data errors subclass these) and invalid settings.
        raise SystemExit(f"{parser.prog}: error: {e}") from None
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
    if args.command == "attack":
        return _run_attack(args, args._parser)
    if args.command == "train-lm":
        return _run_train_lm(args, args._parser)
    if args.command == "generate":
        return _run_generate(args, args._parser)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
