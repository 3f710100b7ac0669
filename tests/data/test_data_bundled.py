"""The bundled spoken-digits dataset: found in a checkout and in a wheel, 20 classes, speaker-disjoint splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import snnkit
from snnkit import data

BUNDLED = data.bundled_dir() / "spoken_digits"
FILES = [BUNDLED / f"spoken_digits_{split}.h5" for split in ("train", "test")]


def test_bundled_dir_in_a_checkout_is_the_repository_datasets_folder():
    if (Path(snnkit.__file__).resolve().parent / "_bundled").is_dir():
        pytest.skip("snnkit is installed from a wheel here")
    assert data.bundled_dir() == Path(snnkit.__file__).resolve().parent.parent / "datasets"
    assert (data.bundled_dir() / "README.md").is_file()


def test_bundled_dir_in_a_wheel_is_the_package_data_folder(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "snnkit"
    (package / "_bundled" / "spoken_digits").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(snnkit, "__file__", str(package / "__init__.py"))
    assert data.bundled_dir() == package / "_bundled"


def test_bundled_spoken_digits_have_20_classes_and_disjoint_speakers(no_network):
    assert all(f.is_file() for f in FILES), f"bundled files missing (they are committed): {FILES}"
    train = data.SpokenDigits("train")
    test = data.SpokenDigits(split="test", dt_ms=10, channel_pool=5)
    assert train.num_classes == 20 and len(train.classes) == 20
    assert set(np.unique(train.labels)) == set(range(20))
    assert set(np.unique(test.labels)) <= set(range(20))
    assert len(train) > 0 and len(test) > 0
    assert set(train.speakers.tolist()).isdisjoint(test.speakers.tolist())
    frames, label = train[0]
    assert frames.ndim == 2 and frames.shape[1] == 140 and 0 <= label < 20
    x, y = next(iter(data.loader(test, batch_size=8)))
    assert x.shape[1:] == (min(8, len(test)), 140) and y.shape[0] == x.shape[1]
    assert no_network == []
