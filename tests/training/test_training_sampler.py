"""The resumable sampler: order is a function of (seed, epoch) only; start skips; ranks partition the data."""

from __future__ import annotations

import pytest
import torch

from snnkit.training import ResumableSampler

DATA = list(range(23))


def test_order_depends_only_on_seed_and_epoch() -> None:
    a, b = ResumableSampler(DATA, seed=5), ResumableSampler(DATA, seed=5)
    a.set_epoch(3)
    list(a)  # iterating never changes the next order
    first = list(a)
    b.set_epoch(0)
    list(b)
    b.set_epoch(3)
    assert list(b) == first
    assert sorted(first) == DATA
    a.set_epoch(4)
    assert list(a) != first


def test_start_skips_done_samples() -> None:
    s = ResumableSampler(DATA, seed=1)
    s.set_epoch(2)
    full = list(s)
    s.set_start(8)
    assert list(s) == full[8:] and len(s) == 15
    with pytest.raises(ValueError, match="start"):
        s.set_start(24)


def test_ranks_partition_each_epoch() -> None:
    shards = [ResumableSampler(DATA, num_replicas=2, rank=r, seed=0, drop_last=True) for r in range(2)]
    for s in shards:
        s.set_epoch(1)
    a, b = list(shards[0]), list(shards[1])
    assert len(a) == len(b) == 11 and not set(a) & set(b)


def test_state_dict() -> None:
    s = ResumableSampler(DATA, seed=4)
    s.set_epoch(2)
    s.set_start(3)
    assert s.state_dict() == {"seed": 4, "epoch": 2, "start": 3, "num_replicas": 1}


def test_global_rng_untouched() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    s = ResumableSampler(DATA, seed=4)
    list(s)
    assert torch.equal(before, torch.get_rng_state())
