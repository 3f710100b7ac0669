"""Event-to-frame binning: time bins, per-bin event counts (tonic's ``ToFrame``), channel pooling, resizing.

Every function here keeps one invariant: each event is counted in exactly one frame, or dropped only when the
caller asked for it (events past ``n_bins``, e.g. a maximum duration).

Why not call ``tonic.transforms.ToFrame(n_time_bins=...)`` / ``ToFrame(time_window=...)`` directly (tonic 1.7):

* ``n_time_bins`` computes the bin width with floor division, ``(t[-1] - t[0]) // n``, and slices ``[start, end)``,
  so the events after ``t[0] + n * width`` are dropped: always at least the last event, and every event when the
  recording is shorter than ``n`` microseconds (width 0).
* ``time_window`` starts the grid at the first event of each sample (not at t = 0, so bin k means a different time
  in every sample) and drops the events after the last full window; with ``include_incomplete=True`` it still
  drops the last event whenever the span is an exact multiple of the window (events at 0, 100, 200 with a window
  of 100 give 2 frames holding 2 events). With a float window the boundaries ``k * w + w`` and ``(k + 1) * w`` can
  differ in the last bit, so an event on a boundary can be counted twice or not at all.
* An empty recording gives a frame of shape ``(1, P, W, H)`` instead of ``(T, P, H, W)``.

So we first assign each event an integer bin index with exact arithmetic (:func:`fixed_grid_bins`,
:func:`equal_time_bins`), then let ``ToFrame`` accumulate unit-width windows ``[k, k + 1)`` over those indices
(:func:`count_frames`), which is exact.
"""

from __future__ import annotations

import functools

import numpy as np
from tonic.transforms import ToFrame

__all__ = ["fixed_grid_bins", "equal_time_bins", "count_frames", "pool_channels", "resize_frames"]


def fixed_grid_bins(t_us: np.ndarray, dt_us: float) -> np.ndarray:
    """Bin index ``floor(t / dt)`` of each event on a grid anchored at t = 0.

    Anchoring at 0 (not at the first event) keeps bin k at the same absolute time in every sample, which is what
    delay-learning models (Hammouamri et al., ICLR 2024) and fixed-length RNN unrolls assume.

    Args:
        t_us: event times in microseconds, shape ``[N]``, finite and >= 0.
        dt_us: bin width in microseconds, > 0.

    Returns:
        int64 array ``[N]``.
    """
    t = np.asarray(t_us)
    if dt_us <= 0:
        raise ValueError(f"dt_us must be > 0, got {dt_us}")
    if t.dtype.kind == "f" and t.size and not np.isfinite(t).all():
        raise ValueError(f"event times must be finite, got {t[~np.isfinite(t)][0]}")
    if t.size and t.min() < 0:
        raise ValueError(f"event times must be >= 0 for a grid anchored at t = 0, got min {t.min()}")
    if float(dt_us).is_integer() and np.issubdtype(t.dtype, np.integer):
        # integer floor division is exact; float division could round t = k * dt just below k
        return t.astype(np.int64) // int(dt_us)
    return np.floor(t.astype(np.float64) / float(dt_us)).astype(np.int64)


def equal_time_bins(t_us: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each event for ``n_bins`` equal bins spanning the first to the last event (both included).

    Bin width is ``(t_max - t_min + 1) / n_bins`` microseconds; event i goes to
    ``((t_i - t_min) * n_bins) // (t_max - t_min + 1)``, computed in integers so no event is lost or duplicated
    at a boundary (tonic's ``ToFrame(n_time_bins=n)`` drops the tail, see the module docstring).

    Args:
        t_us: integer event times in microseconds, shape ``[N]``.
        n_bins: number of bins, >= 1.

    Returns:
        int64 array ``[N]`` with values in ``[0, n_bins)``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    t = np.asarray(t_us).astype(np.int64)
    if t.size == 0:
        return t
    t0 = t.min()
    span = int(t.max() - t0) + 1
    # (t - t0) * n_bins stays far below 2**63 for any real recording (hours of microseconds times 1e4 bins)
    return ((t - t0) * n_bins) // span


def count_frames(events: np.ndarray, bins: np.ndarray, n_bins: int, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Count events per (bin, polarity, pixel) with tonic's ``ToFrame`` on precomputed bin indices.

    Events whose bin is outside ``[0, n_bins)`` are dropped (this is how a maximum duration is applied); every
    other event is counted exactly once, which is checked.

    Args:
        events: tonic structured event array with fields ``t``, ``x``, ``p`` and optionally ``y``.
        bins: int bin index per event, shape ``[N]``.
        n_bins: number of frames T, >= 1.
        sensor_size: tonic's ``(W, H, P)``; ``H`` is 1 for 1-D sensors such as the cochlea model of SHD.

    Returns:
        float32 array ``[T, P, H, W]`` for events with ``y``, ``[T, P, W]`` without (tonic's layout).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    width, height, n_pol = sensor_size
    has_y = "y" in events.dtype.names
    shape = (n_bins, n_pol, height, width) if has_y else (n_bins, n_pol, width)
    bins = np.asarray(bins, dtype=np.int64)
    keep = (bins >= 0) & (bins < n_bins)
    if not keep.all():
        events, bins = events[keep], bins[keep]
    if len(events) == 0:
        return np.zeros(shape, dtype=np.float32)
    _check_in_sensor(events, sensor_size)

    binned = events.copy()  # ToFrame overwrites p in place for 1-polarity sensors; never touch the caller's array
    binned["t"] = bins
    if np.any(bins[1:] < bins[:-1]):
        # tonic slices with searchsorted, which needs time-sorted events
        binned = binned[np.argsort(bins, kind="stable")]
    # unit windows [k, k + 1) over integer bin indices: exact, T windows from start_time=0 to end_time=T
    frames = ToFrame(sensor_size=sensor_size, time_window=1, start_time=0, end_time=n_bins)(binned)
    if frames.shape != shape:
        raise RuntimeError(f"tonic ToFrame returned shape {frames.shape}, expected {shape}")
    counted = int(frames.sum(dtype=np.int64))
    if counted != len(binned):
        # tonic accumulates in int16: more than 32767 events in one bin and pixel wrap around
        raise OverflowError(
            f"frame binning counted {counted} of {len(binned)} events: more than 32767 events fell into one "
            "bin and pixel (tonic's ToFrame counts in int16); use more time bins"
        )
    return frames.astype(np.float32)


def _check_in_sensor(events: np.ndarray, sensor_size: tuple[int, int, int]) -> None:
    width, height, n_pol = sensor_size
    checks = [("x", width)] + ([("y", height)] if "y" in events.dtype.names else [])
    for field, size in checks:
        values = events[field]
        if values.min() < 0 or values.max() >= size:
            raise ValueError(f"event {field} coordinates must lie in [0, {size}), got [{values.min()}, {values.max()}]")
    if n_pol > 1:
        p = events["p"].astype(np.int64)
        if p.min() < 0 or p.max() >= n_pol:
            raise ValueError(f"event polarities must lie in [0, {n_pol}), got [{p.min()}, {p.max()}]")


def pool_channels(frames: np.ndarray, pool: int) -> np.ndarray:
    """Sum groups of ``pool`` neighbouring channels along the last axis: ``[..., C] -> [..., C // pool]``.

    SHD/SSC's 700 cochlear channels pooled by 5 to 140 as in Hammouamri et al. (ICLR 2024, "Learning delays in
    spiking neural networks using dilated convolutions with learnable spacings"). Summing keeps every event.
    """
    channels = frames.shape[-1]
    if pool < 1 or channels % pool:
        raise ValueError(f"pool={pool} must be >= 1 and divide the {channels} channels")
    if pool == 1:
        return frames
    return frames.reshape(*frames.shape[:-1], channels // pool, pool).sum(axis=-1)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize ``[..., H, W]`` frames to ``[..., size, size]`` by adaptive average pooling (area interpolation).

    Output pixel (i, j) is the mean over input rows ``[floor(i H / size), ceil((i + 1) H / size))`` and the
    matching columns: the windows of ``torch.nn.functional.adaptive_avg_pool2d``. The mean over a rectangle is
    separable, so it is computed as ``A_H @ frames @ A_W.T`` with small averaging matrices, which avoids torch's
    intra-op thread pool (8x slower than one thread for this size on a busy 2-core machine).

    Averaging (rather than summing events into coarser pixels, tonic's ``Downsample``) avoids the stripe pattern a
    non-integer factor such as 128 -> 48 gives, where some output pixels collect 3 input columns and others 2.
    Values become mean counts per covered input pixel; when ``size`` divides H and W the windows do not overlap
    and ``frames.sum() * (H / size) ** 2`` is still the number of events.
    """
    height, width = frames.shape[-2:]
    if (height, width) == (size, size):
        return frames
    rows, cols = _area_weights(height, size), _area_weights(width, size)
    return (rows @ np.asarray(frames, dtype=np.float32) @ cols.T).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=32)
def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    weights = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)  # floor, ceil
        weights[i, start:end] = 1.0 / (end - start)
    weights.setflags(write=False)
    return weights
