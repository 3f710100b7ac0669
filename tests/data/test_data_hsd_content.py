"""SHD-format files whose content is inconsistent: rejected with the file and the sample named, never read wrongly.

Each case writes a small file in the Heidelberg layout with one defect and checks the error: file-level defects
(labels, speakers, class names, counts) when the dataset is opened, per-sample defects when that sample is read,
while the other samples of the file still read normally.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnkit import data
from snnkit.data import CorruptDatasetError
from snnkit.data.frames import fixed_grid_bins
from snnkit.data.readers import SHDReader

N = 4


def good_samples() -> list[dict]:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(N):
        count = 30 + 5 * i
        samples.append(
            {
                "times": np.sort(rng.uniform(0.0, 0.9, count)),
                "units": rng.integers(0, 700, count),
                "label": i,
                "speaker": i % 2,
            }
        )
    return samples


def write(
    path: Path,
    samples: list[dict],
    *,
    n_classes: int = 20,
    times_dtype=np.float32,
    units_dtype=np.uint16,
    labels=None,
    speakers=None,
    keys=None,
) -> Path:
    """An SHD-layout file; ``labels``/``speakers``/``keys`` replace the per-sample values when given (any dtype)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        times = file.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(times_dtype))
        units = file.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(units_dtype))
        for i, sample in enumerate(samples):
            times[i] = np.asarray(sample["times"]).astype(times_dtype)
            units[i] = np.asarray(sample["units"]).astype(units_dtype)
        file["labels"] = np.array([s["label"] for s in samples], dtype=np.uint8) if labels is None else labels
        file["extra/speaker"] = (
            np.array([s["speaker"] for s in samples], dtype=np.uint8) if speakers is None else speakers
        )
        file["extra/keys"] = np.array([f"w{k}".encode() for k in range(n_classes)]) if keys is None else keys
    return path


def shd_file(tmp_path: Path) -> Path:
    return tmp_path / "SHD" / "shd_test.h5"


# ------------------------------------------------------------------------------------------- per-sample defects


def _units_short(s):
    s["units"] = s["units"][:-1]


def _units_long(s):
    s["units"] = np.append(s["units"], 3)


def _set_time(value):
    def change(s):
        s["times"] = s["times"].copy()
        s["times"][3] = value

    return change


def _unit(value):
    def change(s):
        s["units"] = s["units"].copy()
        s["units"][5] = value

    return change


SAMPLE_DEFECTS = [
    # (name, change to sample 1, expected message after "shd_test.h5: sample 1: ")
    ("units one short", _units_short, r"spikes/times has 35 entries but spikes/units has 34"),
    ("units one long", _units_long, r"spikes/times has 35 entries but spikes/units has 36"),
    ("a NaN time", _set_time(np.nan), r"spikes/times\[3\] is nan; spike times must be finite seconds"),
    ("an inf time", _set_time(np.inf), r"spikes/times\[3\] is inf; spike times must be finite"),
    ("a negative time", _set_time(-0.5), r"spikes/times\[3\] is -0.5 s; .* >= 0"),
    ("an absurd time", _set_time(1e5), r"spikes/times\[3\] is 100000 s, beyond max_spike_time_s=10 s"),
    ("time in milliseconds", lambda s: s.update(times=s["times"] * 1000), r".* s, beyond max_spike_time_s=10 s"),
    ("unit 700", _unit(700), r"spikes/units\[5\] is 700, outside the 700 channels \[0, 700\)"),
]


@pytest.mark.parametrize(("change", "message"), [d[1:] for d in SAMPLE_DEFECTS], ids=[d[0] for d in SAMPLE_DEFECTS])
def test_a_defective_sample_is_rejected_naming_file_and_sample(tmp_path, change, message):
    samples = good_samples()
    change(samples[1])
    write(shd_file(tmp_path), samples)
    test = data.SHD(tmp_path, "test")  # per-sample defects are found when the sample is read
    assert test[0][0].sum() == len(samples[0]["units"])
    assert test[2][0].sum() == len(samples[2]["units"])
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: sample 1: " + message):
        test[1]
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: sample 1: "):
        test[1 - len(test)]  # a negative index names the sample by its position
    # the tonic reader underneath checks too (the dataset does not hide an unchecked path)
    with pytest.raises(CorruptDatasetError, match=r"sample 1: " + message):
        SHDReader(tmp_path / "SHD", train=False)[1]


@pytest.mark.parametrize("units_dtype", [np.int16, np.float32])
def test_negative_and_fractional_units(tmp_path, units_dtype):
    samples = good_samples()
    samples[2]["units"] = samples[2]["units"].astype(units_dtype)
    samples[2]["units"][0] = -1
    samples[3]["units"] = samples[3]["units"].astype(units_dtype)
    samples[3]["units"][1] = 2.5 if units_dtype == np.float32 else 700
    write(shd_file(tmp_path), samples, units_dtype=units_dtype)
    test = data.SHD(tmp_path, "test", channel_pool=1)
    assert test[1][0].sum() == len(samples[1]["units"])
    with pytest.raises(CorruptDatasetError, match=r"sample 2: spikes/units\[0\] is -1, outside"):
        test[2]
    bad = r"is 2.5, not a whole channel index" if units_dtype == np.float32 else r"is 700, outside"
    with pytest.raises(CorruptDatasetError, match=r"sample 3: spikes/units\[1\] " + bad):
        test[3]


def test_whole_float_units_read_as_channels(tmp_path):
    samples = good_samples()
    write(shd_file(tmp_path), samples, units_dtype=np.float32)
    frames = data.SHD(tmp_path, "test", channel_pool=1)[2][0].numpy()
    np.testing.assert_array_equal(frames.sum(0), np.bincount(samples[2]["units"], minlength=700))


def test_spike_time_bound_is_an_argument(tmp_path):
    samples = good_samples()
    samples[1]["times"] = np.append(samples[1]["times"], 12.0)
    samples[1]["units"] = np.append(samples[1]["units"], 9)
    samples[2]["times"] = np.append(samples[2]["times"], 10.0)  # exactly at the default bound: accepted
    samples[2]["units"] = np.append(samples[2]["units"], 9)
    write(shd_file(tmp_path), samples)
    with pytest.raises(CorruptDatasetError, match=r"sample 1: spikes/times\[35\] is 12 s, beyond .*larger max_spike"):
        data.SHD(tmp_path, "test")[1]
    assert data.SHD(tmp_path, "test")[2][0].shape[0] == 1001
    longer = data.SHD(tmp_path, "test", max_spike_time_s=20)
    assert longer[1][0].shape[0] == 1201 and longer[1][0].sum() == 36
    with pytest.raises(CorruptDatasetError, match=r"beyond max_spike_time_s=0.5 s"):
        data.SHD(tmp_path, "test", max_spike_time_s=0.5)[0]
    # cropping a valid recording stays the job of max_duration_ms
    assert data.SHD(tmp_path, "test", max_spike_time_s=20, max_duration_ms=100)[1][0].shape[0] <= 10


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "10", True])
def test_bad_spike_time_bound_names_the_argument(tmp_path, value):
    write(shd_file(tmp_path), good_samples())
    with pytest.raises(ValueError, match="max_spike_time_s"):
        data.SHD(tmp_path, "test", max_spike_time_s=value)


def test_empty_sample_is_valid(tmp_path):
    samples = good_samples()
    samples[1]["times"], samples[1]["units"] = np.zeros(0), np.zeros(0, dtype=np.int64)
    write(shd_file(tmp_path), samples)
    frames, label = data.SHD(tmp_path, "test")[1]
    assert frames.shape == (1, 140) and frames.sum() == 0 and label == 1


def test_a_defective_sample_is_not_cached(tmp_path):
    samples = good_samples()
    _set_time(np.nan)(samples[1])
    write(shd_file(tmp_path), samples)
    cached = data.SHD(tmp_path, "test", cache=True, cache_dir=tmp_path / "cache")
    cached[0]
    for _ in range(2):  # the second read must not find a cached (wrong) sample either
        with pytest.raises(CorruptDatasetError, match=r"sample 1: spikes/times\[3\] is nan"):
            cached[1]


def test_the_bound_keys_the_cache(tmp_path):
    samples = good_samples()
    samples[1]["times"] = np.append(samples[1]["times"], 12.0)
    samples[1]["units"] = np.append(samples[1]["units"], 9)
    write(shd_file(tmp_path), samples)
    assert data.SHD(tmp_path, "test", max_spike_time_s=20, cache=True)[1][0].shape[0] == 1201
    with pytest.raises(CorruptDatasetError, match="beyond max_spike_time_s=10 s"):
        data.SHD(tmp_path, "test", cache=True)[1]  # not served from the cache filled under a larger bound


def test_loader_reports_the_sample(tmp_path):
    samples = good_samples()
    _units_short(samples[3])
    write(shd_file(tmp_path), samples)
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: sample 3: spikes/times has 45 entries"):
        list(data.loader(data.SHD(tmp_path, "test"), batch_size=2))


def test_grid_binning_rejects_non_finite_times():
    with pytest.raises(ValueError, match="event times must be finite, got nan"):
        fixed_grid_bins(np.array([0.0, np.nan]), 10.0)
    with pytest.raises(ValueError, match="event times must be finite, got inf"):
        fixed_grid_bins(np.array([np.inf]), 10.0)


# ------------------------------------------------------------------------------------------- file-level defects

DIFFER = r"the per-sample datasets differ in length \(entries in spikes/times: 4, "
FILE_DEFECTS = [
    # (name, write() keyword arguments, expected message after "shd_test.h5: ")
    (
        "fractional float labels",
        {"labels": np.array([0, 1.5, 2, 3], dtype=np.float32)},
        r"sample 1: labels is 1.5, not a whole number .*not truncated",
    ),
    ("NaN label", {"labels": np.array([0, 1, np.nan, 3])}, r"sample 2: labels is nan, not a whole number"),
    ("negative label", {"labels": np.array([0, -1, 2, 3], dtype=np.int8)}, r"sample 1: labels is -1, outside \[0, 20"),
    ("label = num_classes", {"labels": np.array([0, 1, 20, 3])}, r"sample 2: labels is 20, outside \[0, 20\)"),
    ("2-D labels", {"labels": np.zeros((4, 2), dtype=np.uint8)}, r"labels must be one value per sample \(1-D\)"),
    ("string labels", {"labels": np.array([b"a", b"b", b"c", b"d"])}, r"labels has dtype \|S1, expected integers"),
    ("bool labels", {"labels": np.array([True, False, True, False])}, r"labels has dtype bool, expected integers"),
    ("labels one short", {"labels": np.arange(3, dtype=np.uint8)}, DIFFER + r"spikes/units: 4, labels: 3, extra"),
    ("labels one long", {"labels": np.arange(5, dtype=np.uint8)}, DIFFER + r"spikes/units: 4, labels: 5, extra"),
    ("speakers one short", {"speakers": np.zeros(3, dtype=np.uint8)}, DIFFER + r".*, extra/speaker: 3\)"),
    ("fractional speakers", {"speakers": np.array([0, 0.5, 1, 1])}, r"sample 1: extra/speaker is 0.5"),
    ("too few class names", {"keys": np.array([b"a", b"b"])}, r"extra/keys must name the 20 classes, got 2 name"),
]


@pytest.mark.parametrize(("kwargs", "message"), [d[1:] for d in FILE_DEFECTS], ids=[d[0] for d in FILE_DEFECTS])
def test_a_defective_file_is_rejected_when_opened(tmp_path, kwargs, message):
    write(shd_file(tmp_path), good_samples(), **kwargs)
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: " + message):
        data.SHD(tmp_path, "test")


def test_whole_float_and_signed_labels_are_read_exactly(tmp_path):
    write(shd_file(tmp_path), good_samples(), labels=np.array([0.0, 19.0, 2.0, 3.0]), speakers=np.array([0, 1, 0, 1.0]))
    test = data.SHD(tmp_path, "test")
    assert test.labels.tolist() == [0, 19, 2, 3] and test.labels.dtype == np.int64
    assert [test[i][1] for i in range(N)] == [0, 19, 2, 3] and isinstance(test[1][1], int)
    assert test.speakers.tolist() == [0, 1, 0, 1]


def test_spike_arrays_must_be_per_sample_arrays(tmp_path):
    path = write(shd_file(tmp_path), good_samples())
    with h5py.File(path, "r+") as file:
        del file["spikes/times"]
        file["spikes/times"] = np.zeros((N, 30), dtype=np.float32)  # a padded 2-D block, not SHD's layout
    with pytest.raises(CorruptDatasetError, match=r"spikes/times must hold one variable-length numeric array"):
        data.SHD(tmp_path, "test")


def test_class_count_is_that_of_the_dataset(tmp_path):
    samples = good_samples()
    samples[3]["label"] = 34
    write(tmp_path / "SSC" / "ssc_test.h5", samples, n_classes=35)
    assert data.SSC(tmp_path, "test")[3][1] == 34
    write(tmp_path / "spoken_digits_test.h5", samples, n_classes=35)
    with pytest.raises(CorruptDatasetError, match=r"spoken_digits_test\.h5: sample 3: labels is 34, outside \[0, 20\)"):
        data.SpokenDigits("test", root=tmp_path)


def test_downloaded_file_is_checked_too(tmp_path, monkeypatch):
    import tonic.datasets

    samples = good_samples()

    def fake_download(self):  # tonic's download, as if the network had delivered a defective file
        write(Path(self.location_on_system) / "shd_test.h5", samples, labels=np.array([0, 1, 2, 99]))

    monkeypatch.setattr(tonic.datasets.SHD, "download", fake_download)
    with pytest.raises(CorruptDatasetError, match=r"shd_test\.h5: sample 3: labels is 99"):
        data.SHD(tmp_path, "test", download=True)
