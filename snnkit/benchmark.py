"""Timing, memory and reporting helpers shared by the benchmark scripts (``scripts/bench_*.py``).

Every timer measures wall time (``time.perf_counter``) around a call, synchronising CUDA before and after it so that
asynchronous kernel launches are counted where they run; on other devices the synchronisation is a no-op. Times are
reported in milliseconds, each the median (or another statistic) of the timed repeats after untimed warm-up calls
(kernel compilation, allocator growth, first-call costs).

- :func:`median_ms`: one callable, repeats back to back.
- :func:`time_interleaved`: several callables timed round-robin (one call of each per round), so that a drift in the
  machine's load (a shared or thermally throttled machine) hits all of them alike and their ratios stay fair.
- :func:`cuda_peak_bytes` / :func:`cpu_peak_bytes`: the peak memory one call allocates above what was allocated
  before it.
- :func:`device_name`, :func:`environment` and :func:`write_json`: the device and the library versions a result was
  measured with, recorded next to it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from snnkit.atomic import atomic_write_text

__all__ = [
    "cpu_model",
    "cpu_peak_bytes",
    "cuda_peak_bytes",
    "device_name",
    "elapsed_s",
    "environment",
    "median_ms",
    "package_version",
    "sync",
    "time_interleaved",
    "write_json",
]

Device = str | torch.device


def _is_cuda(device: Device) -> bool:
    return torch.device(device).type == "cuda"


def sync(device: Device) -> None:
    """Wait for the work queued on ``device`` to finish (CUDA); nothing to wait for elsewhere."""
    if _is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


def elapsed_s(fn: Callable[[], object], device: Device) -> float:
    """Wall seconds of one call of ``fn``, with ``device`` synchronised before and after it."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def median_ms(fn: Callable[[], object], device: Device, repeats: int, warmup: int = 1) -> float:
    """Median wall time in ms of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, CUDA synchronised."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    return statistics.median(elapsed_s(fn, device) for _ in range(repeats)) * 1e3


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    device: Device,
    repeats: int,
    warmup: int = 1,
    statistic: Callable[[Sequence[float]], float] = statistics.median,
) -> dict[str, float]:
    """Wall time in ms of each callable, timed round-robin: ``warmup`` untimed calls of each, then ``repeats``
    rounds of one timed call of each, in the order of ``fns``. Returns ``statistic`` (the median unless told) of each
    callable's times, under its name. Alternating the implementations spreads a drift in the machine's load over all
    of them alike, where timing one after the other would charge it to whichever ran during it."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(elapsed_s(fn, device))
    return {name: statistic(ts) * 1e3 for name, ts in times.items()}


def cuda_peak_bytes(fn: Callable[[], object], device: Device) -> int | None:
    """Peak bytes torch allocated on the CUDA device while one call of ``fn`` ran, above the bytes allocated when it
    started (``torch.cuda.max_memory_allocated``); ``None`` on other devices."""
    if not _is_cuda(device):
        return None
    dev = torch.device(device)
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn()
    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) - base


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of the bytes torch allocated on the CPU while one call of ``fn`` ran, above the level at its start: the
    running sum of the profiler's allocation (``self_cpu_memory_usage`` of each op) and free (``[memory]``) events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def cpu_model() -> str:
    """The CPU's model name where Linux tells it (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device: Device) -> str:
    """The GPU's name on CUDA; on CPU the model and the number of threads torch uses, e.g.
    ``"CPU: AMD EPYC 7763 64-Core Processor, 1 thread(s)"``."""
    if _is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU: {cpu_model()}, {torch.get_num_threads()} thread(s)"


def package_version(name: str) -> str | None:
    """The installed version of the distribution (or importable module) ``name``; ``None`` if it is not there."""
    from importlib import import_module, metadata

    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):
        pass
    try:  # a module installed under another distribution's name (e.g. triton in pytorch-triton)
        return getattr(import_module(name), "__version__", None)
    except ImportError:
        return None


def environment(device: Device | None = None) -> dict[str, Any]:
    """What a measurement was taken with: ``device`` (its :func:`device_name`, when given) and the versions of
    torch, triton (``None`` without it) and snnkit."""
    import snnkit

    env: dict[str, Any] = {}
    if device is not None:
        env["device"] = device_name(device)
    env.update(torch=torch.__version__, triton=package_version("triton"),
               snnkit=getattr(snnkit, "__version__", None))
    return env


def write_json(path: str | os.PathLike, result: Mapping[str, Any], device: Device | None = None,
               indent: int = 2) -> dict[str, Any]:
    """Write ``result`` as JSON to ``path`` (atomically, creating the folder), completed with the fields of
    :func:`environment` it does not set itself. Returns what was written."""
    record = dict(result)
    for key, value in environment(device).items():
        record.setdefault(key, value)
    atomic_write_text(Path(path), json.dumps(record, indent=indent))
    return record
