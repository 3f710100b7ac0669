"""snnkit.data.DATASETS: every bundled dataset by name, its settings reach it, and a user's own dataset plugs in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from snnkit import data
from snnkit.data import DATASETS, DatasetSettings, build_dataset


def test_registered_names() -> None:
    assert DATASETS.names() == ["cifar10dvs", "shd", "spoken-digits", "ssc"]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; valid: cifar10dvs, shd, spoken-digits, ssc"):
        build_dataset("mnist", "train")


def test_spoken_digits_settings_reach_the_dataset() -> None:
    ds = build_dataset("spoken-digits", "test", DatasetSettings(dt_ms=20.0, time_steps=7))
    assert isinstance(ds, data.SpokenDigits) and ds.split == "test"
    assert ds.num_classes == 20 and ds.dt_ms == 20.0 and ds.max_duration_ms == 140.0
    frames, _ = ds[0]
    assert frames.shape[0] <= 7 and frames.shape[1] == 140


def test_shd_by_name_reads_root(shd_root: Path, no_network) -> None:
    ds = build_dataset("shd", "train", DatasetSettings(root=str(shd_root), dt_ms=5.0))
    assert isinstance(ds, data.SHD) and len(ds) == 24 and ds.num_classes == 20 and ds.dt_ms == 5.0
    assert ds.path == shd_root / "SHD" / "shd_train.h5"


def test_missing_files_fail_with_the_download_hint(tmp_path: Path, no_network) -> None:
    with pytest.raises(data.DatasetNotFoundError, match="ssc_train.h5"):
        build_dataset("ssc", "train", DatasetSettings(root=str(tmp_path)))


def test_cifar10dvs_by_name_uses_time_steps_and_size(cifar_root: Path, no_network) -> None:
    ds = build_dataset("cifar10dvs", "test", DatasetSettings(root=str(cifar_root), time_steps=3, size=16))
    assert isinstance(ds, data.CIFAR10DVS) and ds.num_classes == 10
    frames, label = ds[0]
    assert frames.shape == (3, 2, 16, 16) and 0 <= label < 10


class _Toy(TensorDataset):
    num_classes = 3


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch):
    """A user's dataset registered as "toy" for the duration of one test."""
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))
    seen: list[tuple[str, DatasetSettings]] = []

    @DATASETS.register("toy")
    def _toy(split: str, settings: DatasetSettings) -> _Toy:
        seen.append((split, settings))
        n = 12 if split == "train" else 6
        return _Toy(torch.rand(n, 4, 5), torch.arange(n) % 3)

    return seen


def test_user_dataset_by_name(toy_registered) -> None:
    settings = DatasetSettings(root="elsewhere", time_steps=4)
    ds = build_dataset("toy", "train", settings)
    assert len(ds) == 12 and ds.num_classes == 3
    assert toy_registered == [("train", settings)]
    assert "toy" in DATASETS


def test_registering_a_taken_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="dataset name 'shd' is already registered"):
        DATASETS.register("shd", lambda split, settings: None)


def test_factory_must_return_a_class_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))
    DATASETS.register("no-count", lambda split, settings: TensorDataset(torch.zeros(2, 3)))
    with pytest.raises(TypeError, match="dataset 'no-count'.*integer num_classes >= 2"):
        build_dataset("no-count", "train")
