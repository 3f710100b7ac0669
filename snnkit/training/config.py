"""The complete, JSON-serialisable description of a training run (saved in every checkpoint for ``resume``).

Each field of :class:`TrainConfig` carries its own help text and value rule in its ``metadata``; ``snnkit train``
builds one flag per field from them (:mod:`snnkit.cli`), so a field added here gets its flag, its ``--help`` line
and its argument check without further code. Names of datasets, models, training methods and schedulers are
checked against their registries.
"""

from __future__ import annotations

import inspect
import json
import keyword
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any

import torch

from snnkit.data import DATASETS

__all__ = [
    "TrainConfig",
    "ConfigError",
    "DATASETS",
    "SCHEDULERS",
    "SEED_MAX",
    "RESUME_OVERRIDABLE",
    "check_device",
    "check_value",
    "check_name",
    "field_type",
]

#: Learning-rate schedules the loop knows: "cosine" (annealed to 0 per optimiser step) or "none" (constant).
SCHEDULERS = ("cosine", "none")
#: Settings a resumed run may change (``snnkit train --resume RUN --device cpu``): they do not influence the numbers
#: it computes.
RESUME_OVERRIDABLE = ("device", "workers", "root", "download", "store")
#: Largest seed: seeds are non-negative 64-bit signed integers (what torch, numpy and the sampler all accept).
SEED_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A :class:`TrainConfig` value no run can use; ``field`` names it, ``problem`` says what was expected."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# ------------------------------------------------------------------------------------------------ value rules
# A rule raises ValueError(problem): the problem text reads after the value's name ("lr: must be finite, got inf")
# and after a flag ("argument --lr: must be finite, got inf").


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _seed_range(v: int) -> bool:
    return 0 <= v <= SEED_MAX


def _run_name(v: str) -> None:
    if not v or v in (".", "..") or "/" in v or "\\" in v:
        raise ValueError(f"must be a single directory name (no path separators, not '.' or '..'), got {v!r}")


def _store_mode(v: str) -> None:
    from snnkit.data.store import STORE_MODES

    if v not in STORE_MODES:
        raise ValueError(f"must be one of {', '.join(STORE_MODES)}, got {v!r}")


def _non_empty(v: str) -> None:
    if not v:
        raise ValueError("must not be empty")


_DEVICES = "auto, cpu, cuda, cuda:N, mps"


def check_device(device: str) -> None:
    """Raise ValueError unless ``device`` names a device this machine has: auto, cpu, cuda, cuda:N or mps."""
    if device in ("auto", "cpu"):
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps") or (dev.type != "cuda" and dev.index not in (None, 0)):
        raise ValueError(f"invalid device {device!r}; accepted: {_DEVICES}")
    if dev.type == "cpu":
        return
    here = ["auto", "cpu"]
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_cuda:
        here += ["cuda", *(f"cuda:{i}" for i in range(n_cuda))]
    has_mps = torch.backends.mps.is_available()
    if has_mps:
        here.append("mps")
    if dev.type == "cuda" and not n_cuda:
        why = "this machine has no CUDA device" + ("" if torch.version.cuda else " (this PyTorch is a CPU-only build)")
    elif dev.type == "cuda" and dev.index is not None and dev.index >= n_cuda:
        why = f"this machine has {n_cuda} CUDA device{'s' if n_cuda > 1 else ''}"
    elif dev.type == "mps" and not has_mps:
        why = "this machine has no Apple MPS device"
    else:
        return
    raise ValueError(f"device {device!r} is not available: {why}; accepted here: {', '.join(here)}")


def _scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def _method_names() -> list[str]:
    from .methods import METHODS  # a dict or a Registry: both iterate over names

    return sorted(METHODS)


def _model_names() -> list[str]:
    from snnkit.models import available

    return available()


def _dataset_names() -> list[str]:
    return DATASETS.names()


def _opt(
    default: Any = MISSING,
    *,
    help: str,
    what: str | None = None,
    ok: Callable[[Any], bool] | None = None,
    check: Callable[[Any], None] | None = None,
    names: Callable[[], list[str]] | None = None,
    kind: str | None = None,
    also: Sequence[str] = (),
    strict: bool = True,
    flag: str | None = None,
    default_factory: Any = MISSING,
) -> Any:
    """A dataclass field with its CLI and validation metadata.

    Args:
        help: one-line description (``--help`` shows it, followed by the default).
        what: the expected value in words ("a positive integer"); errors read "must be <what>, got <value>".
        ok: predicate the value must satisfy (the message uses ``what``).
        check: a function raising ValueError(problem) for values it rejects (for rules ``ok`` cannot express).
        names: a registry's names; the value must be one of them (or of ``also``). ``kind`` names the registry
            in messages ("unknown model 'x'"). ``strict=False``: only the CLI checks the names (a dataset name is
            also a free label when datasets are passed to :func:`~snnkit.training.train`).
        flag: the CLI flag without ``--`` (default: the field name with ``-`` for ``_``).
    """
    meta: dict[str, Any] = {"help": help, "what": what, "ok": ok, "check": check, "names": names, "kind": kind}
    meta.update({"also": tuple(also), "strict": strict, "flag": flag})
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


#: AdamW's learning rate and weight decay for models without a training recipe (tuned on the bundled spoken digits).
DEFAULT_LR = 1e-2
DEFAULT_WEIGHT_DECAY = 1e-4


@dataclass
class TrainConfig:
    """Everything that determines a run. Defaults give the quick CPU run on the bundled spoken digits.

    The defaults (spiking MLP 2 x 256, batch 32, AdamW lr 1e-2 cosine-annealed over 12 epochs) were tuned on the
    bundled spoken digits for accuracy per CPU minute. Each field's ``metadata["help"]`` documents it (``snnkit
    train --help`` prints the same text); :meth:`validate` applies each field's rule.
    """

    # The dataset name is checked where datasets are opened (and by the CLI), not here: with datasets passed to
    # train() it is only a label.
    dataset: str = _opt(
        "spoken-digits",
        help="dataset (registered in snnkit.data.DATASETS)",
        names=_dataset_names,
        kind="dataset",
        strict=False,
    )
    root: str = _opt("datasets", help="data root for shd/ssc/cifar10dvs", check=_non_empty)
    download: bool = _opt(
        False, help="let tonic download missing shd/ssc/cifar10dvs files into --root (default: never touch the network)"
    )
    model: str = _opt(
        "auto",
        help="model name (see --list-models); auto: vgg for cifar10dvs, else mlp",
        names=_model_names,
        kind="model",
        also=("auto",),
    )
    model_kwargs: dict[str, Any] = _opt(
        default_factory=dict,
        help="keyword argument of the model constructor, e.g. hidden=[128,128] (repeatable)",
        flag="model-arg",
    )
    epochs: int = _opt(12, help="training epochs", what="a positive integer", ok=_positive)
    batch_size: int = _opt(32, help="samples per optimiser step, per process", what="a positive integer", ok=_positive)
    lr: float | None = _opt(
        None, help=f"peak learning rate (default: the model's training recipe's, else {DEFAULT_LR:g} for AdamW)",
        what="a positive number", ok=_positive,
    )
    weight_decay: float | None = _opt(
        None,
        help=f"decoupled weight decay (default: the model's training recipe's, else {DEFAULT_WEIGHT_DECAY:g} for AdamW)",
        what="a number >= 0", ok=_non_negative,
    )
    scheduler: str = _opt(
        "cosine",
        help="learning-rate schedule: cosine (annealed to 0 over all steps) or none (constant)",
        names=_scheduler_names,
        kind="scheduler",
    )
    method: str = _opt(
        "bptt", help="training method (snnkit.training.methods.METHODS)", names=_method_names, kind="training method"
    )
    method_args: dict[str, Any] = _opt(
        default_factory=dict,
        help="keyword argument of the training method, e.g. k=2 (repeatable)",
        flag="method-arg",
    )
    grad_clip: float | None = _opt(
        None, help="clip the global gradient norm to this value (default: no clipping)", what="a positive number",
        ok=_positive,
    )
    seed: int = _opt(
        0,
        help="seed for weights, dropout and shuffling",
        what=f"an integer in [0, 2**63 - 1 = {SEED_MAX}]",
        ok=_seed_range,
    )
    device: str = _opt("auto", help=f"{_DEVICES} (auto: CUDA if available, else CPU)", check=check_device)
    amp: bool = _opt(False, help="bf16 autocast for forward passes on CUDA (ignored, with a note, on CPU)")
    workers: int = _opt(0, help="DataLoader worker processes", what="an integer >= 0", ok=_non_negative)
    time_steps: int | None = _opt(
        None,
        help="frames per sample for cifar10dvs (default 10); audio datasets: crop recordings to this many --dt-ms bins",
        what="a positive integer",
        ok=_positive,
    )
    size: int = _opt(48, help="frame side in pixels, cifar10dvs", what="a positive integer", ok=_positive)
    dt_ms: float = _opt(10.0, help="time bin in ms, shd/ssc/spoken-digits", what="a positive number", ok=_positive)
    store: str | None = _opt(
        None,
        help="serve frames from a binned-frame store under <root>/cache, held in RAM (memory) or memory-mapped "
        "(disk); built on first use, same batches as without it (default: every sample through tonic)",
        check=_store_mode,
    )
    crop: int | None = _opt(
        None, help="augment: train on a random window of this many frames of each sample (default: whole samples)",
        what="a positive integer", ok=_positive,
    )
    time_jitter: int = _opt(
        0, help="augment: shift each training sample by up to this many frames, zero-filled (default 0: off)",
        what="an integer >= 0", ok=_non_negative,
    )
    channel_dropout: float = _opt(
        0.0, help="augment: silence each input channel of each training sample with this probability (default 0)",
        what="a number in [0, 1)", ok=lambda p: 0.0 <= p < 1.0,
    )
    ckpt_every: int = _opt(
        20, help="also checkpoint every N batches, 0 = epoch ends only", what="an integer >= 0", ok=_non_negative
    )
    plot_every: int = _opt(
        1, help="redraw curves.png and raster.png every N epochs, 0 = after the last epoch only",
        what="an integer >= 0", ok=_non_negative,
    )
    max_train_batches: int | None = _opt(
        None, help="cap on batches per epoch (quick experiments; default: all)", what="a positive integer",
        ok=_positive,
    )
    out: str = _opt("runs", help="parent directory of run directories", check=_non_empty)
    name: str | None = _opt(None, help="run directory name (default <dataset>-<model>-s<seed>-<time>)", check=_run_name)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` (a ValueError naming the field) for values no run could use.

        Checks each field's type and rule (finite numbers, ranges, the seed range, the device string and its
        availability on this machine, registered model, method and scheduler names) and that ``method_args`` fit
        the method's constructor.
        """
        for f in fields(self):
            try:
                check_value(f, getattr(self, f.name))
            except ValueError as e:
                raise ConfigError(f.name, str(e)) from None
        from .methods import METHODS

        factory = METHODS.get(self.method)  # dict.get and Registry.get: the name was checked above
        try:
            inspect.signature(factory).bind(**self.method_args)
        except TypeError as e:
            raise ConfigError("method_args", f"do not fit training method {self.method!r}: {e}") from None
        except ValueError:  # no introspectable signature: the method checks its arguments itself
            pass

    def resolved_model(self) -> str:
        """The model name with ``"auto"`` resolved for the dataset."""
        if self.model != "auto":
            return self.model
        return "vgg" if self.dataset == "cifar10dvs" else "mlp"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer snnkit) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ------------------------------------------------------------------------------------------------ field checks
_HINTS: dict[str, Any] | None = None


def field_type(f: Field) -> tuple[type, bool]:
    """``(base type, None allowed)`` of a :class:`TrainConfig` field: ``int | None`` -> ``(int, True)``."""
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(TrainConfig)
    hint = _HINTS[f.name]
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    base = typing.get_origin(hint) or hint
    return base, optional


_WHAT = {bool: "True or False", int: "an integer", float: "a number", str: "a string", dict: "a dict"}


def check_value(f: Field, v: Any) -> None:
    """Raise ValueError(problem) unless ``v`` is a valid value of the :class:`TrainConfig` field ``f``."""
    base, optional = field_type(f)
    meta = f.metadata
    what = meta.get("what") or _WHAT[base]
    if v is None and optional:
        return
    if base is dict:
        _check_kwargs(v)
        return
    accepted = (int, float) if base is float else base
    if not isinstance(v, accepted) or (base is not bool and isinstance(v, bool)):
        raise ValueError(f"must be {what}, got {v!r}")
    if base is float and not math.isfinite(v):
        raise ValueError(f"must be finite, got {v}")
    if meta.get("ok") is not None and not meta["ok"](v):
        raise ValueError(f"must be {what}, got {v!r}")
    if meta.get("check") is not None:
        meta["check"](v)
    if meta.get("names") is not None and meta.get("strict", True):
        check_name(f, v)


def check_name(f: Field, v: str) -> None:
    """Raise ValueError unless ``v`` is one of the names field ``f`` accepts (its registry's, plus e.g. "auto")."""
    meta = f.metadata
    names = list(meta["names"]())
    if v not in names and v not in meta["also"]:
        also = "".join(f", or {a}" for a in meta["also"])
        raise ValueError(f"unknown {meta['kind']} {v!r}; valid: {', '.join(names)}{also}")


def _check_kwargs(v: Any) -> None:
    # Keyword arguments of a constructor, saved in config.json: identifier keys, JSON values.
    if not isinstance(v, dict):
        raise ValueError(f"must be a dict of keyword arguments, got {type(v).__name__}")
    for key, value in v.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise ValueError(f"keys must be Python identifiers (keyword argument names), got {key!r}")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{key}={value!r}: values must be JSON-serialisable (numbers, strings, booleans, None, lists, dicts)"
            ) from None
