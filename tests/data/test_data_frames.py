"""Binning primitives: exact bin assignment, tonic ToFrame accumulation, pooling, resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnkit.data.frames import count_frames, equal_time_bins, fixed_grid_bins, pool_channels, resize_frames

HSD = np.dtype([("t", int), ("x", int), ("p", int)])  # tonic's HSD event dtype
DVS = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])  # tonic's CIFAR10DVS event dtype


def events_1d(t, x):
    ev = np.zeros(len(t), dtype=HSD)
    ev["t"], ev["x"], ev["p"] = t, x, 1
    return ev


def test_fixed_grid_bins_on_boundaries():
    t = np.array([0, 9_999, 10_000, 19_999, 20_000, 30_001])
    assert fixed_grid_bins(t, 10_000).tolist() == [0, 0, 1, 1, 2, 3]
    # a non-integer width: 7.5 ms; t = 15 000 is exactly the start of bin 2
    assert fixed_grid_bins(np.array([7_499, 7_500, 14_999, 15_000]), 7_500.0).tolist() == [0, 1, 1, 2]
    assert fixed_grid_bins(np.array([333, 334, 666, 667]), 1000 / 3).tolist() == [0, 1, 1, 2]
    with pytest.raises(ValueError, match=">= 0"):
        fixed_grid_bins(np.array([-1]), 10)


def test_equal_time_bins_cover_first_to_last_event():
    t = np.array([100, 100, 150, 199, 200, 299, 300])
    bins = equal_time_bins(t, 2)  # span 201 us: bin 0 = [100, 200.5)
    assert bins.tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert equal_time_bins(np.array([5, 5, 5]), 4).tolist() == [0, 0, 0]  # zero-length recording
    assert equal_time_bins(np.arange(10), 10).tolist() == list(range(10))
    assert equal_time_bins(np.arange(3), 10).tolist() == [0, 3, 6]  # shorter than the number of bins


def test_count_frames_counts_each_event_once_unsorted_and_leaves_input_alone():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 50_000, 2_000)  # unsorted on purpose
    ev = events_1d(t, rng.integers(0, 700, 2_000))
    before = ev.copy()
    bins = fixed_grid_bins(ev["t"], 1_000)
    frames = count_frames(ev, bins, int(bins.max()) + 1, (700, 1, 1))
    expected = np.zeros((int(bins.max()) + 1, 1, 700))
    np.add.at(expected, (bins, 0, ev["x"]), 1)
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(ev, before)  # tonic sets p = 0 in place for 1-polarity sensors


def test_count_frames_drops_only_out_of_range_bins():
    ev = events_1d([0, 10, 20, 30], [1, 2, 3, 4])
    frames = count_frames(ev, np.array([0, 1, 2, 3]), 2, (700, 1, 1))
    assert frames.shape == (2, 1, 700) and frames.sum() == 2


def test_count_frames_empty_and_2d_layout():
    empty = np.zeros(0, dtype=DVS)
    assert count_frames(empty, np.zeros(0, dtype=np.int64), 3, (128, 128, 2)).shape == (3, 2, 128, 128)
    ev = np.zeros(3, dtype=DVS)
    ev["t"], ev["x"], ev["y"], ev["p"] = [0, 1, 2], [5, 127, 0], [0, 3, 127], [True, False, True]
    frames = count_frames(ev, np.array([0, 0, 1]), 2, (128, 128, 2))
    assert frames[0, 1, 0, 5] == 1 and frames[0, 0, 3, 127] == 1 and frames[1, 1, 127, 0] == 1
    assert frames.sum() == 3


def test_count_frames_rejects_events_outside_the_sensor():
    with pytest.raises(ValueError, match=r"x coordinates must lie in \[0, 700\)"):
        count_frames(events_1d([0], [700]), np.array([0]), 1, (700, 1, 1))


def test_count_frames_detects_tonic_int16_overflow():
    ev = events_1d(np.zeros(40_000, dtype=int), np.zeros(40_000, dtype=int))
    with pytest.raises(OverflowError, match="int16"):
        count_frames(ev, np.zeros(40_000, dtype=np.int64), 1, (700, 1, 1))


def test_pool_channels():
    frames = np.arange(2 * 700, dtype=np.float32).reshape(2, 700)
    pooled = pool_channels(frames, 5)
    assert pooled.shape == (2, 140) and pooled[0, 1] == 5 + 6 + 7 + 8 + 9
    assert pooled.sum() == frames.sum()
    with pytest.raises(ValueError, match="divide"):
        pool_channels(frames, 3)


@pytest.mark.parametrize("size", [48, 64, 17, 1, 100])
def test_resize_matches_torch_adaptive_average_pooling(size):
    frames = np.random.default_rng(size).poisson(0.3, (3, 2, 128, 128)).astype(np.float32)
    expected = F.adaptive_avg_pool2d(torch.from_numpy(frames), size).numpy()
    np.testing.assert_allclose(resize_frames(frames, size), expected, rtol=1e-5, atol=1e-6)
    assert resize_frames(frames, 128) is frames
