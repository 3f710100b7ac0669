"""Validation shared by the dataset classes: arguments (every error names the argument) and file content.

Content rules for files in the SHD/SSC HDF5 layout (Cramer et al. 2020) live here once, and the readers call them:

* :func:`check_hsd_file` at open time, on what is cheap to read for the whole file: the datasets' lengths agree,
  ``spikes/times`` and ``spikes/units`` hold one variable-length numeric array per sample, ``labels`` are whole
  numbers in ``[0, num_classes)`` (a float label 2.7 is rejected, not truncated to 2), speakers are whole numbers,
  and ``extra/keys`` names ``num_classes`` classes.
* :func:`check_hsd_sample` when a sample is read: ``spikes/times`` and ``spikes/units`` have the same length, times
  are finite seconds in ``[0, max_spike_time_s]``, units are whole numbers in ``[0, 700)``. A sample without
  spikes is valid (it becomes one silent frame).

Every error is a :class:`~snnkit.data.errors.CorruptDatasetError` naming the file, the sample and the dataset key,
e.g. ``shd_train.h5: sample 17: spikes/times has 120 entries but spikes/units has 119``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection, Mapping

import numpy as np

from .errors import CorruptDatasetError

#: Default bound on spike times in SHD-format files, in seconds. SHD and SSC recordings last about 1 s (SHD's
#: longest about 1.4 s); a spike much later is a corrupt or mis-scaled file (times written in milliseconds, say),
#: and would make its sample thousands of time bins long. 10 s leaves room for longer recordings of one's own.
MAX_SPIKE_TIME_S = 10.0


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_positive_number(name: str, value: object) -> float:
    """A finite real number > 0 (bools are rejected: ``dt_ms=True`` is a bug, not 1 ms)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_divides(name: str, value: object, total: int) -> int:
    """A positive integer that divides ``total`` exactly (channel pooling must not drop channels)."""
    value = check_int(name, value, minimum=1)
    if total % value:
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        raise ValueError(f"{name}={value} does not divide the {total} input channels; use one of {divisors}")
    return value


def check_fraction(name: str, value: object) -> float:
    """A real number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------- SHD/SSC file content


def _whole_numbers(path: object, key: str, values: object) -> np.ndarray:
    """``values`` as an int64 array, if it is a 1-D array of integers or of floats without a fractional part."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise CorruptDatasetError(f"{path}: {key} must be one value per sample (1-D), got shape {array.shape}")
    kind = array.dtype.kind
    if kind not in "iuf":
        raise CorruptDatasetError(f"{path}: {key} has dtype {array.dtype}, expected integers")
    if kind == "f":
        bad = ~np.isfinite(array) | (array != np.floor(array))
        if bad.any():
            i = int(np.argmax(bad))
            raise CorruptDatasetError(
                f"{path}: sample {i}: {key} is {array[i].item()!r}, not a whole number ({key} holds integers; a "
                "fractional value is not truncated)"
            )
        if array.size and np.abs(array).max() >= 2**62:
            i = int(np.argmax(np.abs(array)))
            raise CorruptDatasetError(f"{path}: sample {i}: {key} is {array[i].item()!r}, out of any sensible range")
    return array.astype(np.int64)


def _vlen_base(dataset: object) -> np.dtype | None:
    import h5py

    return h5py.check_vlen_dtype(dataset.dtype)  # type: ignore[attr-defined]


def check_hsd_file(path: str | os.PathLike[str], file: Mapping[str, object], num_classes: int) -> None:
    """File-level checks of an open SHD/SSC HDF5 ``file`` (see the module docstring); raises CorruptDatasetError.

    The keys (``spikes/times``, ``spikes/units``, ``labels``, ``extra/keys``, ``extra/speaker``) must exist.
    """
    name = os.fspath(path)
    for key in ("spikes/times", "spikes/units"):
        dataset = file[key]
        base = _vlen_base(dataset)
        shape, dtype = dataset.shape, base if base is not None else dataset.dtype  # type: ignore[attr-defined]
        if len(shape) != 1 or base is None or base.kind not in "iuf":
            raise CorruptDatasetError(
                f"{name}: {key} must hold one variable-length numeric array per sample (SHD's layout), got "
                f"shape {shape} of dtype {dtype}"
            )
    labels = _whole_numbers(name, "labels", file["labels"][()])  # type: ignore[index]
    speakers = _whole_numbers(name, "extra/speaker", file["extra/speaker"][()])  # type: ignore[index]
    lengths = {
        "spikes/times": len(file["spikes/times"]),  # type: ignore[arg-type]
        "spikes/units": len(file["spikes/units"]),  # type: ignore[arg-type]
        "labels": len(labels),
        "extra/speaker": len(speakers),
    }
    if len(set(lengths.values())) != 1:
        counts = ", ".join(f"{key}: {n}" for key, n in lengths.items())
        raise CorruptDatasetError(f"{name}: the per-sample datasets differ in length (entries in {counts})")
    if labels.size:
        for i in (int(np.argmin(labels)), int(np.argmax(labels))):
            if not 0 <= labels[i] < num_classes:
                raise CorruptDatasetError(
                    f"{name}: sample {i}: labels is {labels[i]}, outside [0, {num_classes}) (labels span "
                    f"[{labels.min()}, {labels.max()}]; the dataset has {num_classes} classes)"
                )
    keys = np.asarray(file["extra/keys"][()])  # type: ignore[index]
    if keys.ndim != 1 or len(keys) != num_classes:
        raise CorruptDatasetError(
            f"{name}: extra/keys must name the {num_classes} classes, got {keys.size} name(s) of shape {keys.shape}"
        )


def check_hsd_sample(
    path: str | os.PathLike[str],
    index: int,
    times: np.ndarray,
    units: np.ndarray,
    *,
    channels: int,
    max_spike_time_s: float = MAX_SPIKE_TIME_S,
) -> None:
    """Checks of one SHD/SSC sample as read from the file (times in seconds); raises CorruptDatasetError.

    Args:
        path: the file (named in the message).
        index: the sample's index (named in the message).
        times: ``spikes/times`` of the sample, seconds.
        units: ``spikes/units`` of the sample, channel indices.
        channels: number of channels; units must lie in ``[0, channels)``.
        max_spike_time_s: latest accepted spike time in seconds.
    """
    where = f"{os.fspath(path)}: sample {index}"
    times, units = np.asarray(times), np.asarray(units)
    if times.ndim != 1 or units.ndim != 1:
        raise CorruptDatasetError(
            f"{where}: spikes/times and spikes/units must be 1-D, got shapes {times.shape} and {units.shape}"
        )
    if len(times) != len(units):
        raise CorruptDatasetError(
            f"{where}: spikes/times has {len(times)} entries but spikes/units has {len(units)}"
        )
    if len(times) == 0:
        return
    if times.dtype.kind not in "iuf" or units.dtype.kind not in "iuf":
        raise CorruptDatasetError(
            f"{where}: spikes/times and spikes/units must be numeric, got {times.dtype} and {units.dtype}"
        )
    t = times.astype(np.float64)
    finite = np.isfinite(t)
    if not finite.all():
        j = int(np.argmin(finite))
        raise CorruptDatasetError(f"{where}: spikes/times[{j}] is {t[j]}; spike times must be finite seconds")
    j = int(np.argmin(t))
    if t[j] < 0:
        raise CorruptDatasetError(
            f"{where}: spikes/times[{j}] is {t[j]:g} s; spike times are seconds from the start of the recording, >= 0"
        )
    j = int(np.argmax(t))
    if t[j] > max_spike_time_s:
        raise CorruptDatasetError(
            f"{where}: spikes/times[{j}] is {t[j]:g} s, beyond max_spike_time_s={max_spike_time_s:g} s (SHD/SSC "
            "recordings last about 1 s: a corrupt file, or times not in seconds?). Pass a larger max_spike_time_s "
            "if the recording really is that long."
        )
    u = units
    if u.dtype.kind == "f":
        whole = np.isfinite(u) & (u == np.floor(u))
        if not whole.all():
            j = int(np.argmin(whole))
            raise CorruptDatasetError(f"{where}: spikes/units[{j}] is {u[j].item()!r}, not a whole channel index")
    for j in (int(np.argmin(u)), int(np.argmax(u))):
        if not 0 <= u[j] < channels:
            raise CorruptDatasetError(
                f"{where}: spikes/units[{j}] is {float(u[j]):g}, outside the {channels} channels [0, {channels})"
            )
