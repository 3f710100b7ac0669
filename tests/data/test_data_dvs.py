"""CIFAR10-DVS read by the real tonic class from AEDAT4 files (written by dv-processing) in tonic's layout."""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnkit import data
from snnkit.data import CorruptDatasetError, DatasetNotFoundError, DownloadError

pytest.importorskip("aedat", reason="tonic reads AEDAT4 through the aedat package (an snnkit dependency)")
pytest.importorskip("dv_processing", reason="dv-processing (test extra) writes the AEDAT4 test files")


def by_name(recordings):
    return {rec.name: rec for rec in recordings}


def reference_counts(rec, time_steps: int) -> np.ndarray:
    """Oracle [T, 2, 128, 128]: event i in bin k iff k * span <= (t_i - t_min) * T < (k + 1) * span."""
    t = rec.t.astype(np.int64)
    span = int(t.max() - t.min()) + 1
    scaled = (t - t.min()) * time_steps
    bins = np.array([next(k for k in range(time_steps) if k * span <= s < (k + 1) * span) for s in scaled])
    out = np.zeros((time_steps, 2, 128, 128))
    np.add.at(out, (bins, rec.p.astype(int), rec.y.astype(int), rec.x.astype(int)), 1)
    return out


def test_count_frames_hold_every_event_once(cifar_root, dvs_recordings, no_network):
    recordings = by_name(dvs_recordings)
    for split in ("train", "test"):
        dvs = data.CIFAR10DVS(cifar_root, split, time_steps=7, size=128, cache=False)
        for i in range(0, len(dvs), 9):
            frames, label = dvs[i]
            rec = recordings[Path(dvs.files[i]).name]
            assert frames.shape == (7, 2, 128, 128) and frames.dtype == torch.float32
            assert label == rec.label and isinstance(label, int)
            assert frames.sum().item() == len(rec.t)
            np.testing.assert_array_equal(frames.numpy(), reference_counts(rec, 7))
    assert no_network == []


def test_tonic_n_time_bins_would_drop_events(dvs_recordings):
    """Why snnkit bins time itself: tonic's ToFrame(n_time_bins) loses the tail of every recording."""
    from tonic.transforms import ToFrame

    rec = dvs_recordings[0]
    events = np.zeros(len(rec.t), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    events["t"], events["x"], events["y"], events["p"] = rec.t, rec.x, rec.y, rec.p
    tonic_frames = ToFrame(sensor_size=(128, 128, 2), n_time_bins=10)(events)
    assert tonic_frames.sum() < len(rec.t)
    ours = data.DVSFrames(time_steps=10, size=128)(events)
    assert ours.sum() == len(rec.t)


def test_resize_and_binary_frames(cifar_root):
    full = data.CIFAR10DVS(cifar_root, "test", time_steps=10, size=128, cache=False)
    for size in (48, 64):
        small = data.CIFAR10DVS(cifar_root, "test", time_steps=10, size=size, cache=False)
        binary = data.CIFAR10DVS(cifar_root, "test", time_steps=10, size=size, frame_mode="binary", cache=False)
        for i in (0, 5):
            counts = full[i][0]
            expected = F.adaptive_avg_pool2d(counts, size)
            assert small[i][0].shape == (10, 2, size, size)
            torch.testing.assert_close(small[i][0], expected)
            torch.testing.assert_close(binary[i][0], (expected > 0).float())
            assert set(binary[i][0].unique().tolist()) <= {0.0, 1.0}
    # 64 divides 128: block means, so the event count is recovered exactly
    assert data.CIFAR10DVS(cifar_root, "test", size=64, cache=False)[0][0].sum() * 4 == full[0][0].sum()


def test_split_is_90_10_per_class_disjoint_and_reproducible(cifar_root):
    train = data.CIFAR10DVS(cifar_root, "train", cache=False)
    test = data.CIFAR10DVS(cifar_root, "test", cache=False)
    assert len(train) == 90 and len(test) == 10
    assert np.bincount(train.labels).tolist() == [9] * 10 and np.bincount(test.labels).tolist() == [1] * 10
    assert set(train.files).isdisjoint(test.files) and len(set(train.files) | set(test.files)) == 100
    assert train.files == data.CIFAR10DVS(cifar_root, "train", cache=False).files
    other = data.CIFAR10DVS(cifar_root, "test", split_seed=1, cache=False)
    assert other.files != test.files
    ordered = data.CIFAR10DVS(cifar_root, "test", split_seed=None, cache=False)
    assert [Path(f).name for f in ordered.files][:2] == ["cifar10_airplane_9.aedat4", "cifar10_automobile_9.aedat4"]
    quarter = data.CIFAR10DVS(cifar_root, "test", train_fraction=0.75, cache=False)
    assert np.bincount(quarter.labels).tolist() == [2] * 10  # 10 - round(7.5 half up) = 2


def test_split_per_class_rounds_half_up():
    train, test = data.split_per_class(np.repeat(np.arange(3), 5), 0.7, seed=0)
    assert len(train) == 3 * 4 and len(test) == 3 * 1  # 0.7 * 5 = 3.5 -> 4 (Python's round() would give 4 too)
    train, test = data.split_per_class(np.repeat(np.arange(3), 5), 0.5, seed=0)
    assert len(train) == 3 * 3  # 2.5 -> 3, where round() gives 2
    train, test = data.split_per_class(np.repeat(np.arange(2), 1000), 0.9, seed=0)
    assert len(train) == 1800 and len(test) == 200


def test_cache_equals_first_load_and_is_faster(cifar_root, tmp_path):
    kwargs = dict(time_steps=10, size=48, cache_dir=tmp_path / "cache")
    first_set = data.CIFAR10DVS(cifar_root, "train", **kwargs)
    start = time.perf_counter()
    first = [first_set[i] for i in range(len(first_set))]
    cold = time.perf_counter() - start
    second_set = data.CIFAR10DVS(cifar_root, "train", **kwargs)
    warm = float("inf")
    for _ in range(2):  # best of two reading passes: robust to a busy machine
        start = time.perf_counter()
        second = [second_set[i] for i in range(len(second_set))]
        warm = min(warm, time.perf_counter() - start)
    for (a, la), (b, lb) in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)
        assert la == lb
    plain = data.CIFAR10DVS(cifar_root, "train", time_steps=10, size=48, cache=False)
    torch.testing.assert_close(second[3][0], plain[3][0])
    assert warm < cold, (warm, cold)
    (folder,) = (tmp_path / "cache" / "CIFAR10DVS").iterdir()
    assert len(list(folder.glob("*.hdf5"))) == 90
    # the test split reuses the same cache (keyed by recording, not by split)
    data.CIFAR10DVS(cifar_root, "test", **kwargs)[0]
    assert len(list(folder.glob("*.hdf5"))) == 91


def test_default_cache_lives_under_root(cifar_root):
    data.CIFAR10DVS(cifar_root, "test", time_steps=2, size=16)[0]
    assert list((cifar_root / "cache" / "CIFAR10DVS").glob("*/*.hdf5"))


# ------------------------------------------------------------------------------------------ layouts and errors


def test_class_archives_only_are_extracted_without_network(tmp_path, dvs_archives, no_network):
    folder = tmp_path / "CIFAR10DVS"
    folder.mkdir()
    for zipped in dvs_archives.glob("*.zip"):
        if zipped.name != "CIFAR10DVS.zip":
            shutil.copy(zipped, folder)
    assert len(data.CIFAR10DVS(tmp_path, "train", cache=False)) == 90
    assert len(list(folder.glob("*/*.aedat4"))) == 100
    assert no_network == []


def test_figshare_archive_only_is_extracted_without_network(tmp_path, dvs_archives, no_network):
    (tmp_path / "CIFAR10DVS").mkdir()
    shutil.copy(dvs_archives / "CIFAR10DVS.zip", tmp_path / "CIFAR10DVS")
    assert len(data.CIFAR10DVS(tmp_path, "test", cache=False)) == 10
    assert no_network == []


def test_partial_extraction_is_completed_from_the_class_archive(cifar_root, dvs_archives, no_network):
    folder = cifar_root / "CIFAR10DVS"
    for path in sorted((folder / "bird").glob("*.aedat4"))[:6]:
        path.unlink()
    shutil.copy(dvs_archives / "bird.zip", folder)
    assert len(data.CIFAR10DVS(cifar_root, "train", cache=False)) == 90
    assert no_network == []


def test_missing_classes_fail_fast_naming_them_and_the_url(cifar_root, no_network):
    shutil.rmtree(cifar_root / "CIFAR10DVS" / "cat")
    shutil.rmtree(cifar_root / "CIFAR10DVS" / "frog")
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        data.CIFAR10DVS(cifar_root, "train")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "cat, frog" in message and str(cifar_root / "CIFAR10DVS") in message
    assert "CIFAR10DVS.zip" in message and "https://figshare.com/ndownloader/files/38023437" in message
    assert no_network == []


def test_nothing_there_fails_fast(tmp_path, no_network):
    with pytest.raises(DatasetNotFoundError, match="airplane, automobile"):
        data.CIFAR10DVS(tmp_path, "test")
    assert no_network == []


def test_download_true_without_network_fails_fast(tmp_path, no_network):
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="figshare"):
        data.CIFAR10DVS(tmp_path, "test", download=True)
    assert time.perf_counter() - start < 5.0


def test_recording_outside_a_class_folder_is_reported(cifar_root):
    stray = cifar_root / "CIFAR10DVS" / "extra" / "x.aedat4"
    stray.parent.mkdir()
    shutil.copy(next((cifar_root / "CIFAR10DVS" / "dog").glob("*.aedat4")), stray)
    with pytest.raises(CorruptDatasetError, match=r"extra/x\.aedat4 is not inside a class folder"):
        data.CIFAR10DVS(cifar_root, "train", cache=False)


def test_truncated_recording_names_the_file(cifar_root):
    dvs = data.CIFAR10DVS(cifar_root, "test", cache=False)
    victim = Path(dvs.files[4])
    victim.write_bytes(victim.read_bytes()[:300])
    dvs[3]
    with pytest.raises(CorruptDatasetError, match=victim.name):
        dvs[4]


def test_corrupt_class_archive_names_it(tmp_path, dvs_archives):
    folder = tmp_path / "CIFAR10DVS"
    folder.mkdir()
    for zipped in dvs_archives.glob("*.zip"):
        if zipped.name != "CIFAR10DVS.zip":
            shutil.copy(zipped, folder)
    payload = (folder / "ship.zip").read_bytes()
    (folder / "ship.zip").write_bytes(payload[: len(payload) // 3])
    with pytest.raises(CorruptDatasetError, match=r"ship\.zip"):
        data.CIFAR10DVS(tmp_path, "test")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "valid"}, "split must be one of 'train', 'test'"),
        ({"time_steps": 0}, "time_steps must be >= 1"),
        ({"size": 0}, r"size must be in \[1, 128\]"),
        ({"size": 129}, r"size must be in \[1, 128\]"),
        ({"frame_mode": "spikes"}, "frame_mode must be one of 'count', 'binary'"),
        ({"train_fraction": 1.0}, "train_fraction"),
        ({"split_seed": -1}, "split_seed"),
    ],
)
def test_invalid_arguments_name_the_argument(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.CIFAR10DVS(tmp_path, **kwargs)


def test_archive_member_listing_uses_tonic_layout(dvs_archives):
    with zipfile.ZipFile(dvs_archives / "horse.zip") as zipped:
        assert all(name.startswith("horse/") and name.endswith(".aedat4") for name in zipped.namelist())


def test_missing_aedat_package_is_reported_up_front(cifar_root, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aedat" else real(name, *a))
    with pytest.raises(ImportError, match="pip install aedat"):
        data.CIFAR10DVS(cifar_root, "train")
