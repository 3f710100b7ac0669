"""Training-time augmentation (FrameAugment): applied on the device to training batches only, within each sample's
own length, different per batch, and exactly repeatable when a killed run is resumed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from _training_data import tiny_bundle, tiny_config

from snnkit.training import Callback, FrameAugment, TrainConfig, Trainer, fit, resume, train
from snnkit.training.config import ConfigError


class Killed(Exception):
    pass


class Ragged(Dataset):
    """Sample i lasts 3 + i % 5 frames; frame t of it is 100 (i + 1) + t on all channels (a crop is recognisable)."""

    def __init__(self, n: int = 16, channels: int = 4) -> None:
        self.n, self.c = n, channels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        steps = 3 + i % 5
        return (100.0 * (i + 1) + torch.arange(steps, dtype=torch.float32))[:, None].repeat(1, self.c), i % 2


class Recorder(nn.Module):
    """Remembers the inputs it was trained on; logits from a linear map so the loop has something to optimise."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x.detach().clone())
        return self.fc(x)


class LengthProbe(Callback):
    """Records the lengths a transform saw, after FrameAugment (it runs later in the list)."""

    def __init__(self) -> None:
        self.lengths: list[torch.Tensor | None] = []

    def transform_batch(self, trainer, x, y, lengths):
        self.lengths.append(None if lengths is None else lengths.clone())
        return x, y, lengths


def test_crop_stays_inside_each_samples_own_frames_and_changes_per_batch() -> None:
    model, probe = Recorder(), LengthProbe()
    fit(model, Ragged(), epochs=2, batch_size=4, callbacks=[FrameAugment(crop=3), probe], device="cpu",
        progress=False, seed=1)
    assert len(model.seen) == 8 and all(x.shape[0] == 3 for x in model.seen)
    starts: dict[int, set[int]] = {}
    for x in model.seen:
        # Every sample has at least 3 frames, so a window inside its own length holds no padding (zeros), and it is
        # 3 consecutive frames of one sample.
        values = x[:, :, 0]
        assert (values > 0).all(), "the crop reached into the zero padding: lengths were not used"
        assert torch.equal(values - values[:1], torch.arange(3.0)[:, None].expand_as(values))
        for v in values[0].tolist():
            i = int(v // 100) - 1
            starts.setdefault(i, set()).add(int(v) % 100)
    assert all(lengths is not None and (lengths == 3).all() for lengths in probe.lengths)
    assert all(max(s) <= 3 + i % 5 - 3 for i, s in starts.items())
    # Over 2 epochs the 16 samples get different windows: some sample starts at two places.
    assert any(len(s) > 1 for s in starts.values())


def test_time_jitter_and_channel_dropout_change_the_batch_and_test_batches_stay_clean() -> None:
    model = Recorder()
    seen_eval: list[torch.Tensor] = []
    model.fc.register_forward_hook(lambda m, i, o: None if model.training else seen_eval.append(i[0].clone()))
    data = Ragged()
    fit(model, data, test_data=data, epochs=1, batch_size=16, device="cpu", progress=False,
        callbacks=[FrameAugment(time_jitter=2, channel_dropout=0.5)])
    x = model.seen[0]
    assert x.shape[0] == 7  # jitter keeps T
    dropped = (x == 0).all(0)  # [B, C]: channels silenced for the whole sample
    assert dropped.any() and not dropped.all()
    # The test pass saw the samples as they are.
    assert len(seen_eval) == 1 and torch.equal(seen_eval[0][:3, 0, 0], torch.tensor([100.0, 101.0, 102.0]))


def test_no_augmentation_leaves_batches_and_the_loader_unchanged() -> None:
    model = Recorder()
    fit(model, Ragged(), epochs=1, batch_size=16, device="cpu", progress=False, callbacks=[FrameAugment()])
    assert model.seen[0].shape[0] == 7
    # Every sample arrives whole (the order is shuffled).
    columns = sorted(model.seen[0][:, :, 0].T.tolist())
    assert columns == sorted(Ragged()[i][0][:, 0].tolist() + [0.0] * (7 - 3 - i % 5) for i in range(16))


def _cfg(out: Path, name: str) -> TrainConfig:
    return replace(tiny_config(str(out), name), crop=6, time_jitter=1, channel_dropout=0.2)


def test_config_augmented_run_resumes_exactly(tmp_path: Path) -> None:
    ref = train(_cfg(tmp_path, "ref"), data=tiny_bundle(), progress=False)
    plain = train(replace(_cfg(tmp_path, "plain"), crop=None, time_jitter=0, channel_dropout=0.0),
                  data=tiny_bundle(), progress=False)

    def kill(trainer: Trainer) -> None:
        if trainer.global_step == 11:
            raise Killed

    with pytest.raises(Killed):
        train(_cfg(tmp_path, "killed"), data=tiny_bundle(), callbacks=[kill], progress=False)
    again = resume(tmp_path / "killed", data=tiny_bundle(), progress=False)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    # ... and the augmentation did something: the same seed without it ends elsewhere.
    assert any(not torch.equal(v, plain.model.state_dict()[k]) for k, v in ref.model.state_dict().items())


@pytest.mark.parametrize(
    "field, value", [("crop", 0), ("time_jitter", -1), ("channel_dropout", 1.0), ("channel_dropout", -0.1)]
)
def test_bad_augmentation_settings_are_refused(field: str, value) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})
    with pytest.raises((ValueError, TypeError), match=field):
        FrameAugment(**{field: value})


def test_augmenting_non_frame_batches_names_the_problem() -> None:
    model = nn.Linear(3, 2)
    batches = [(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(ValueError, match="FrameAugment needs time-first frames"):
        fit(model, batches, epochs=1, device="cpu", progress=False, callbacks=[FrameAugment(crop=2)],
            loss=lambda out, y: out.sum())


def test_each_batch_of_an_epoch_draws_its_own_crops() -> None:
    # The same batch four times in one epoch: the draws come from (seed, epoch, step), so they differ per step.
    x = (torch.arange(12.0)[:, None, None] + 100.0 * torch.arange(1, 9.0)[None, :, None]).repeat(1, 1, 4)
    batches = [(x, torch.zeros(8, dtype=torch.long))] * 4
    model = Recorder()
    fit(model, batches, epochs=1, device="cpu", progress=False, callbacks=[FrameAugment(crop=4)])
    firsts = [tuple(seen[0, :, 0].tolist()) for seen in model.seen]
    assert len(firsts) == 4 and len(set(firsts)) == 4
