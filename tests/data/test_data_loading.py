"""data.loader / pad_collate: time-first batches, zero padding at the end, labels, lengths, validation."""

from __future__ import annotations

import pytest
import torch

from snnkit import data


class Toy(torch.utils.data.Dataset):
    """Items (frames [T_i, 3], label) with T_i = 1 + i % 4 and frames filled with i + 1 (never 0)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return torch.full((1 + i % 4, 3), float(i + 1)), i % 2


def test_collate_pads_at_the_end_time_first():
    samples = [Toy()[i] for i in (0, 3, 1)]  # T = 1, 4, 2
    x, y = data.pad_collate(samples)
    assert x.shape == (4, 3, 3) and x.dtype == torch.float32
    assert y.tolist() == [0, 1, 1] and y.dtype == torch.long
    for b, (frames, _) in enumerate(samples):
        t = frames.shape[0]
        torch.testing.assert_close(x[:t, b], frames)
        assert (x[t:, b] == 0).all()
    _, _, lengths = data.pad_collate(samples, return_lengths=True)
    assert lengths.tolist() == [1, 4, 2] and lengths.dtype == torch.long


def test_collate_rejects_mismatched_features():
    with pytest.raises(ValueError, match="equal trailing dimensions"):
        data.pad_collate([(torch.zeros(2, 3), 0), (torch.zeros(2, 4), 1)])
    with pytest.raises(ValueError, match="empty batch"):
        data.pad_collate([])


def test_collate_accepts_numpy_frames_and_numpy_labels():
    import numpy as np

    x, y = data.pad_collate([(np.ones((2, 5), dtype=np.int16), np.int64(3))])
    assert x.dtype == torch.float32 and x.shape == (2, 1, 5) and y.tolist() == [3]


def test_loader_iterates_x_y_and_optionally_lengths():
    batches = list(data.loader(Toy(), batch_size=4))
    assert [x.shape[1] for x, _ in batches] == [4, 4, 2]
    assert batches[0][0].shape == (4, 4, 3)
    for x, y, lengths in data.loader(Toy(), batch_size=3, return_lengths=True):
        assert x.shape[0] == lengths.max() and y.shape == lengths.shape
    assert len(list(data.loader(Toy(), batch_size=4, drop_last=True))) == 2


def test_seeded_shuffle_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()

    def order(seed: int) -> list[list[float]]:
        return [y.tolist() + x[0, :, 0].tolist() for x, y in data.loader(Toy(), 5, True, seed=seed)]

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert torch.equal(state, torch.get_rng_state())


def test_loader_with_workers(shd_root):
    train = data.SHD(shd_root, "train")
    sequential = list(data.loader(train, batch_size=8))
    parallel = list(data.loader(train, batch_size=8, num_workers=2))
    for (a, ya), (b, yb) in zip(sequential, parallel, strict=True):
        torch.testing.assert_close(a, b)
        assert torch.equal(ya, yb)


def test_shd_batches_have_the_brief_shapes(shd_root):
    train = data.SHD(shd_root, "train", dt_ms=10, channel_pool=5)
    x, y = next(iter(data.loader(train, batch_size=6, shuffle=True, seed=0)))
    assert x.shape[1:] == (6, 140) and y.shape == (6,) and y.dtype == torch.long


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"batch_size": -3}, "batch_size must be >= 1"),
        ({"batch_size": 2.0}, "batch_size must be an integer"),
        ({"batch_size": True}, "batch_size must be an integer"),
        ({"batch_size": 2, "num_workers": -1}, "num_workers must be >= 0"),
        ({"batch_size": 2, "shuffle": "yes"}, "shuffle must be a bool"),
        ({"batch_size": 2, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_loader_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.loader(Toy(), **kwargs)


def test_datasets_pickle_for_spawned_workers(shd_root):
    import pickle

    cached = data.SHD(shd_root, "test", cache=True)
    clone = pickle.loads(pickle.dumps(cached))
    torch.testing.assert_close(clone[2][0], cached[2][0])
