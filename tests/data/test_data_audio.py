"""SHD / SSC / SpokenDigits read by the real tonic classes from HDF5 files in the Heidelberg layout."""

from __future__ import annotations

import gzip
import math
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from snnkit import data
from snnkit.data import CorruptDatasetError, DatasetNotFoundError, DownloadError


def reference_frames(sample, dt_ms: float, pool: int = 1, max_ms: float | None = None) -> np.ndarray:
    """Independent oracle: spike counts per (floor(t / dt), channel // pool) with numpy."""
    t, units = sample.times_us(), sample.units.astype(np.int64)
    if max_ms is not None:
        keep = t < max_ms * 1000
        t, units = t[keep], units[keep]
    bins = np.floor(t / (dt_ms * 1000)).astype(np.int64)
    n_bins = int(bins.max()) + 1 if len(bins) else 1
    out = np.zeros((n_bins, 700 // pool))
    np.add.at(out, (bins, units // pool), 1)
    return out


# ------------------------------------------------------------------------------------------ frames and labels


@pytest.mark.parametrize("dt_ms", [1.0, 10.0, 7.5, 0.25])
def test_every_spike_counted_once_in_its_bin(shd_root, shd_samples, dt_ms):
    train = data.SHD(shd_root, "train", dt_ms=dt_ms, channel_pool=1)
    for i, sample in enumerate(shd_samples["train"]):
        frames, label = train[i]
        expected = reference_frames(sample, dt_ms)
        assert frames.dtype == torch.float32 and frames.shape == expected.shape
        np.testing.assert_array_equal(frames.numpy(), expected)
        assert frames.sum().item() == len(sample.units)
        assert label == sample.label and isinstance(label, int)


def test_float64_spike_times(tmp_path, formats):
    samples = formats.make_hsd_samples(4, 20, seed=11)
    for sample in samples:  # float64 times on a 1 us grid, 1 ms bins: many spikes near bin boundaries
        sample.times_s = np.sort(np.random.default_rng(0).integers(0, 1_000_000, len(sample.units))) / 1e6
    formats.write_hsd(tmp_path / "SHD" / "shd_test.h5", samples, 20, times_dtype=np.float64)
    test = data.SHD(tmp_path, "test", dt_ms=1, channel_pool=1)
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(test[i][0].numpy(), reference_frames(sample, 1))
        assert test[i][0].sum() == len(sample.units)


def test_item_shape_matches_the_brief(shd_root, shd_samples):
    train = data.SHD(shd_root, split="train", dt_ms=10, channel_pool=5)
    frames, _ = train[0]
    last_us = shd_samples["train"][0].times_us().max()
    assert frames.shape == (last_us // 10_000 + 1, 140)
    assert train.num_channels == 140 and train.num_classes == 20 and len(train) == 24


@pytest.mark.parametrize("pool", [5, 7, 2, 700])
def test_channel_pooling_sums_neighbouring_channels(shd_root, shd_samples, pool):
    full = data.SHD(shd_root, "train", channel_pool=1)
    pooled = data.SHD(shd_root, "train", channel_pool=pool)
    for i in (0, 3):
        a, b = full[i][0], pooled[i][0]
        assert b.shape == (a.shape[0], 700 // pool)
        torch.testing.assert_close(b, a.reshape(a.shape[0], 700 // pool, pool).sum(-1))
        np.testing.assert_array_equal(b.numpy(), reference_frames(shd_samples["train"][i], 10, pool))


def test_max_duration_drops_late_spikes_only(shd_root, shd_samples):
    train = data.SHD(shd_root, "train", dt_ms=10, max_duration_ms=205)
    for i, sample in enumerate(shd_samples["train"][:8]):
        frames, _ = train[i]
        expected = reference_frames(sample, 10, 5, max_ms=205)
        np.testing.assert_array_equal(frames.numpy(), expected)
        assert frames.shape[0] <= math.ceil(205 / 10)
        assert frames.sum().item() == int((sample.times_us() < 205_000).sum())


def test_sample_without_spikes_is_one_zero_frame(shd_root):
    frames, _ = data.SHD(shd_root, "train")[5]  # sample 5 was written empty
    assert frames.shape == (1, 140) and frames.sum() == 0


def test_metadata_labels_speakers_classes(shd_root, shd_samples):
    test = data.SHD(shd_root, "test")
    assert test.labels.tolist() == [s.label for s in shd_samples["test"]]
    assert test.speakers.tolist() == [s.speaker for s in shd_samples["test"]]
    assert test.classes == [f"word-{k}" for k in range(20)]
    assert test.path == shd_root / "SHD" / "shd_test.h5"
    assert "SHD(split='test'" in repr(test)


def test_indexing(shd_root):
    test = data.SHD(shd_root, "test")
    torch.testing.assert_close(test[-1][0], test[len(test) - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        test[len(test)]


def test_ssc_splits_and_classes(tmp_path, formats):
    for split, seed in (("train", 4), ("valid", 5), ("test", 6)):
        formats.write_hsd(tmp_path / "SSC" / f"ssc_{split}.h5", formats.make_hsd_samples(6, 35, seed), 35)
    for split in ("train", "valid", "test"):
        ssc = data.SSC(tmp_path, split=split)
        assert len(ssc) == 6 and ssc.num_classes == 35 and len(ssc.classes) == 35
        assert ssc[0][0].shape[1] == 140
    with pytest.raises(ValueError, match="split"):
        data.SSC(tmp_path, split="validation")


def test_labels_outside_the_class_range_are_reported(tmp_path, formats):
    samples = formats.make_hsd_samples(3, 35, 7)  # labels 0..2 fine, but say one is 25 for a 20-class SHD
    samples[2].label = 25
    formats.write_hsd(tmp_path / "SHD" / "shd_train.h5", samples, 20)
    with pytest.raises(CorruptDatasetError, match="shd_train.h5.*labels"):
        data.SHD(tmp_path, "train")


# ------------------------------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "valid"}, "split must be one of 'train', 'test'"),
        ({"dt_ms": 0}, "dt_ms must be > 0"),
        ({"dt_ms": -1}, "dt_ms must be > 0"),
        ({"dt_ms": float("nan")}, "dt_ms must be a finite number"),
        ({"dt_ms": True}, "dt_ms"),
        ({"channel_pool": 3}, "channel_pool=3 does not divide the 700"),
        ({"channel_pool": 0}, "channel_pool must be >= 1"),
        ({"channel_pool": 2.5}, "channel_pool must be an integer"),
        ({"max_duration_ms": 0}, "max_duration_ms must be > 0"),
    ],
)
def test_invalid_arguments_name_the_argument(shd_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.SHD(shd_root, **kwargs)


# ------------------------------------------------------------------------------- files: found, missing, corrupt


def test_hand_placed_h5_is_read_without_network(shd_root, no_network):
    # tonic's own check wants shd_train.h5.zip beside the .h5 and would download; we must not
    assert not (shd_root / "SHD" / "shd_train.h5.zip").exists()
    assert len(data.SHD(shd_root, "train")) == 24
    assert no_network == []


def test_h5_directly_in_root_is_found(tmp_path, shd_samples, no_network, formats):
    formats.write_hsd(tmp_path / "shd_test.h5", shd_samples["test"], 20)
    assert data.SHD(tmp_path, "test").path == tmp_path / "shd_test.h5"


def test_archive_only_is_extracted_locally(tmp_path, shd_samples, no_network, formats):
    source = formats.write_hsd(tmp_path / "src" / "shd_train.h5", shd_samples["train"], 20)
    (tmp_path / "SHD").mkdir()
    formats.zip_file(source, tmp_path / "SHD" / "shd_train.h5.zip")
    with open(source, "rb") as raw, gzip.open(tmp_path / "SHD" / "shd_test.h5.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)  # the original compneuro.net distribution is .h5.gz
    assert len(data.SHD(tmp_path, "train")) == 24
    assert (tmp_path / "SHD" / "shd_train.h5").is_file()
    assert len(data.SHD(tmp_path, "test")) == 24
    assert no_network == []


def test_missing_file_fails_fast_naming_path_and_url(tmp_path, no_network):
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        data.SHD(tmp_path, "train")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert str(tmp_path / "SHD" / "shd_train.h5") in message
    assert "shd_train.h5.zip" in message and "https://zenkelab.org/datasets/shd_train.h5.zip" in message
    assert "download=True" in message
    assert isinstance(info.value, FileNotFoundError)
    assert no_network == []


def test_other_split_present_does_not_fool_the_check(shd_root, no_network):
    # tonic's check passes for the train split when any .h5 is in the folder (and an archive is there)
    (shd_root / "SHD" / "shd_train.h5").unlink()
    (shd_root / "SHD" / "shd_train.h5.zip").write_bytes(b"")  # not even a real zip: must not be trusted blindly
    with pytest.raises(CorruptDatasetError, match="shd_train.h5.zip"):
        data.SHD(shd_root, "train")
    assert no_network == []


def test_download_true_without_network_fails_fast_with_url(tmp_path, no_network):
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="https://zenkelab.org/datasets/ssc_valid.h5.zip"):
        data.SSC(tmp_path, "valid", download=True)
    assert time.perf_counter() - start < 5.0
    assert no_network  # the download was attempted, and refused at once
    # tonic creates the archive file before connecting; the empty leftover must not pass for a download next time
    assert not (tmp_path / "SSC" / "ssc_valid.h5.zip").exists()
    with pytest.raises(DatasetNotFoundError):
        data.SSC(tmp_path, "valid")


def test_truncated_h5_names_the_file(shd_root):
    path = shd_root / "SHD" / "shd_train.h5"
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CorruptDatasetError, match=r"shd_train\.h5 is not a readable HDF5 file"):
        data.SHD(shd_root, "train")


def test_corrupt_zip_names_the_archive(tmp_path, no_network):
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_test.h5.zip").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5\.zip"):
        data.SHD(tmp_path, "test")


def test_wrong_layout_names_missing_keys(tmp_path):
    path = tmp_path / "SHD" / "shd_test.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as file:
        file["labels"] = np.zeros(3, dtype=np.uint8)
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5 lacks spikes/times, spikes/units"):
        data.SHD(tmp_path, "test")


def test_damaged_sample_names_the_file_and_index(tmp_path, formats):
    samples = formats.make_hsd_samples(3, 20, 8)
    samples[1].units[0] = 700  # a channel outside the 700-channel cochlea
    formats.write_hsd(tmp_path / "SHD" / "shd_test.h5", samples, 20)
    test = data.SHD(tmp_path, "test")
    test[0]
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: sample 1: spikes/units\[0\] is 700, .*\[0, 700\)"):
        test[1]


# ------------------------------------------------------------------------------------------ cache


def test_cache_returns_the_same_frames(shd_root):
    plain = data.SHD(shd_root, "train")
    cached = data.SHD(shd_root, "train", cache=True)
    first = [cached[i] for i in range(len(cached))]
    again = data.SHD(shd_root, "train", cache=True)
    for i in range(len(plain)):
        torch.testing.assert_close(first[i][0], plain[i][0])
        torch.testing.assert_close(again[i][0], plain[i][0])
        assert again[i][1] == plain[i][1]
    folders = list((shd_root / "cache" / "SHD").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.hdf5"))) == len(plain)
    assert '"dt_ms": 10.0' in (folders[0] / "config.json").read_text()


def test_cache_is_keyed_by_parameters_and_source(shd_root, tmp_path, formats):
    data.SHD(shd_root, "train", cache=True, cache_dir=tmp_path / "c")[0]
    coarse = data.SHD(shd_root, "train", dt_ms=20, cache=True, cache_dir=tmp_path / "c")
    assert coarse[0][0].shape[0] == data.SHD(shd_root, "train", dt_ms=20)[0][0].shape[0]
    assert len(list((tmp_path / "c" / "SHD").iterdir())) == 2
    # replacing the file (new content) must not serve stale frames
    formats.write_hsd(shd_root / "SHD" / "shd_train.h5", formats.make_hsd_samples(24, 20, seed=99), 20)
    fresh = data.SHD(shd_root, "train", cache=True, cache_dir=tmp_path / "c")
    torch.testing.assert_close(fresh[0][0], data.SHD(shd_root, "train")[0][0])


def test_cache_survives_a_half_written_sample(shd_root):
    cached = data.SHD(shd_root, "train", cache=True)
    expected = cached[2][0]
    (sample_file,) = (shd_root / "cache" / "SHD").glob("*/2_0.hdf5")
    with h5py.File(sample_file, "w") as file:  # frames written, label not: a writer killed in between
        file["data/0"] = np.zeros(3)
    torch.testing.assert_close(data.SHD(shd_root, "train", cache=True)[2][0], expected)


def test_spoken_digits_cache_needs_a_folder(tmp_path, formats):
    formats.write_hsd(tmp_path / "spoken_digits_train.h5", formats.make_hsd_samples(4, 20, 9), 20)
    with pytest.raises(ValueError, match="cache_dir"):
        data.SpokenDigits("train", root=tmp_path, cache=True)
    cached = data.SpokenDigits("train", root=tmp_path, cache=True, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(cached[1][0], data.SpokenDigits("train", root=tmp_path)[1][0])


def test_spoken_digits_reads_shd_layout_with_the_tonic_reader(tmp_path, formats):
    samples = formats.make_hsd_samples(5, 20, 10)
    formats.write_hsd(tmp_path / "spoken_digits_test.h5", samples, 20)
    digits = data.SpokenDigits("test", root=tmp_path, dt_ms=5, channel_pool=10)
    from snnkit.data.readers import SpokenDigitsReader

    assert isinstance(digits._reader, SpokenDigitsReader)
    np.testing.assert_array_equal(digits[3][0].numpy(), reference_frames(samples[3], 5, 10))
    with pytest.raises(DatasetNotFoundError, match=r"spoken_digits_train\.h5.*ships with snnkit"):
        data.SpokenDigits("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.SpokenDigits("valid", root=tmp_path)


def test_items_from_a_fresh_reader_match(shd_root, shd_samples):
    """The tonic reader underneath is plain tonic.datasets.SHD behaviour (events in microseconds, label)."""
    from snnkit.data.readers import SHDReader

    reader = SHDReader(Path(shd_root) / "SHD", train=False)
    events, label = reader[0]
    np.testing.assert_array_equal(events["t"], shd_samples["test"][0].times_us())
    np.testing.assert_array_equal(events["x"], shd_samples["test"][0].units)
    assert label == shd_samples["test"][0].label
