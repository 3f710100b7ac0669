"""Fixtures for the training tests: a tiny learnable spike-train dataset and a fast config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snnkit.training import DataBundle, TrainConfig

# Helper modules (subprocess workers) live next to the tests.
sys.path.insert(0, str(Path(__file__).parent))

from _training_data import tiny_bundle, tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def bundle() -> DataBundle:
    return tiny_bundle()


@pytest.fixture
def cfg(tmp_path: Path) -> TrainConfig:
    """Two short epochs of a one-hidden-layer MLP with dropout (so dropout RNG matters for exact resume)."""
    return tiny_config(str(tmp_path), "run")
