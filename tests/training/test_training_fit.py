"""``fit`` on a model defined here (not from the registry): several optimisers and schedulers, callbacks, the three
kinds of training data, exact resume, clear errors for bad input, schedules, batch caps and gradient clipping."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from _training_data import C, K, T, tiny_bundle

from snnkit.data import pad_collate
from snnkit.neurons import LIF
from snnkit.training import (
    Callback,
    Metric,
    TrainBatches,
    Trainer,
    create_run_dir,
    fit,
    rate_cross_entropy,
    read_jsonl,
    train,
)

B = 8


class Net(nn.Module):
    """Linear -> LIF -> (dropout) -> Linear: per-step logits [T, B, K]."""

    def __init__(self, hidden: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(C, hidden)
        self.lif = LIF(tau=2.0)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.lif(3.0 * self.fc1(x))))


def make_net(dropout: float = 0.0) -> Net:
    torch.manual_seed(0)
    return Net(dropout=dropout)


@pytest.fixture(scope="module")
def data() -> tuple[TensorDataset, TensorDataset]:
    bundle = tiny_bundle()  # 60 train samples [T, C] (8 batches of 8, the last partial), 21 test samples
    return bundle.train, bundle.test


def batches_of(ds: TensorDataset, size: int = B) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A plain list of time-first batches (x [T, B, C], y [B]): the "any iterable" kind of training data."""
    return [pad_collate([ds[j] for j in range(i, min(i + size, len(ds)))]) for i in range(0, len(ds), size)]


def two_optimisers(model: Net):
    """SGD with momentum on the first layer, Adam on the rest."""
    return lambda params: [
        torch.optim.SGD(model.fc1.parameters(), lr=0.5, momentum=0.9),
        torch.optim.Adam(list(model.lif.parameters()) + list(model.fc2.parameters()), lr=1e-2),
    ]


class HalveAdamLR(Callback):
    """Per-epoch hyperparameter change: halves the second optimiser's learning rate after each epoch."""

    def __init__(self) -> None:
        self.starts = 0
        self.ends = 0

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.starts += 1

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.ends += 1
        for group in trainer.optimizers[1].param_groups:
            group["lr"] *= 0.5

    def state_dict(self) -> dict:
        return {"starts": self.starts, "ends": self.ends}

    def load_state_dict(self, state: dict) -> None:
        self.starts, self.ends = state["starts"], state["ends"]


def test_fit_own_model_two_optimisers_schedulers_and_epoch_callback(data, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    train_ds, test_ds = data
    model = make_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    halve = HalveAdamLR()
    epochs = 4
    result = fit(
        model,
        batches_of(train_ds),  # an iterable of batches
        test_data=test_ds,  # a map-style dataset
        epochs=epochs,
        optimizer=two_optimisers(model),
        scheduler=[
            lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8),
            lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        ],
        scheduler_interval="epoch",
        callbacks=[halve],
        device="cpu",
        progress=False,
    )
    history = result.history
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert result.test_accuracy == history[-1]["test_acc"] == result.test_metrics["accuracy"] == result.test_acc
    assert result.test_accuracy > 0.6  # chance is 1/3
    after = model.state_dict()
    assert not torch.equal(after["fc1.weight"], before["fc1.weight"])  # SGD's group moved
    assert not torch.equal(after["fc2.weight"], before["fc2.weight"])  # Adam's group moved
    assert (halve.starts, halve.ends) == (epochs, epochs)
    # Each record holds the learning rates after the epoch's scheduler step, before the callback halves Adam's:
    # SGD 0.5 * 0.8^e; Adam 1e-2, halved by the callback after every epoch and by StepLR every second epoch.
    for e, record in enumerate(history, start=1):
        sgd, adam = record["lrs"]
        assert sgd[0] == pytest.approx(0.5 * 0.8**e, rel=1e-12)
        assert adam[0] == pytest.approx(1e-2 * 0.5 ** (e - 1) * 0.5 ** (e // 2), rel=1e-12)
        assert record["lr"] == sgd[0]
    assert result.model.fc2.weight is model.fc2.weight
    assert not any(tmp_path.iterdir())  # run_dir=None writes nothing


class Killed(Exception):
    pass


def kill_after(n: int):
    def callback(trainer: Trainer) -> None:
        if trainer.global_step == n:
            raise Killed

    return callback


def comparable(records: list[dict]) -> list[dict]:
    drop = {"time", "train_seconds", "spikes_per_s"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.mark.parametrize("kind", ["loader", "dataset", "iterable"])
def test_killed_mid_epoch_resumes_to_identical_weights(data, tmp_path: Path, kind: str) -> None:
    train_ds, test_ds = data

    def run(run_dir: Path, callbacks: list, resume: bool = False):
        if kind == "loader":
            train_data = DataLoader(train_ds, batch_size=B, shuffle=True, collate_fn=pad_collate)
        elif kind == "dataset":
            train_data = train_ds
        else:
            train_data = batches_of(train_ds)
        model = make_net(dropout=0.3)  # dropout: the restored RNG state matters
        return fit(
            model,
            train_data,
            test_data=DataLoader(test_ds, batch_size=B, collate_fn=pad_collate),
            epochs=2,
            optimizer=two_optimisers(model),
            scheduler="cosine",
            callbacks=callbacks,
            batch_size=B,
            seed=5,
            device="cpu",
            run_dir=run_dir,
            resume=resume,
            ckpt_every=2,
            plot_every=0,
            progress=False,
        )

    reference = run(tmp_path / "ref", [HalveAdamLR()])
    # Killed in epoch 2 after batch 3 of 8: the last checkpoint is at batch 2, so the resumed run redoes batch 3.
    halve = HalveAdamLR()
    with pytest.raises(Killed):
        run(tmp_path / "killed", [halve, kill_after(11)])
    assert (halve.starts, halve.ends) == (2, 1)
    resumed_cb = HalveAdamLR()
    resumed = run(tmp_path / "killed", [resumed_cb], resume=True)
    ref_state, got_state = reference.model.state_dict(), resumed.model.state_dict()
    assert ref_state.keys() == got_state.keys()
    for k in ref_state:
        assert torch.equal(ref_state[k], got_state[k]), k
    assert (resumed_cb.starts, resumed_cb.ends) == (2, 2)  # callback state came back from the checkpoint
    assert comparable(resumed.history) == comparable(reference.history)
    assert comparable(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) == comparable(reference.history)
    assert resumed.test_accuracy == reference.test_accuracy


def test_loaders_are_recreated_with_a_resumable_order(data) -> None:
    ds = data[0]
    shuffled = TrainBatches(DataLoader(ds, batch_size=B, shuffle=True, collate_fn=pad_collate, drop_last=True), B, 1)
    assert shuffled.kind == "loader" and shuffled.sampler.shuffle and shuffled.length == 7
    first = [x for x, _ in shuffled.epoch(0)]
    assert len(first) == 7 and all(x.shape == (T, B, C) for x in first)
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in shuffled.epoch(0)], strict=True))
    assert not torch.equal(torch.stack(first), torch.stack([x for x, _ in shuffled.epoch(1)]))
    rest = [x for x, _ in shuffled.epoch(0, start=3)]  # a mid-epoch resume: the remaining batches, in order
    assert all(torch.equal(a, b) for a, b in zip(rest, first[3:], strict=True))
    ordered = TrainBatches(DataLoader(ds, batch_size=B, collate_fn=pad_collate), B, 1)
    assert ordered.kind == "loader" and not ordered.sampler.shuffle and ordered.length == 8
    weighted = DataLoader(ds, batch_size=B, sampler=WeightedRandomSampler([1.0] * len(ds), 16), collate_fn=pad_collate)
    assert TrainBatches(weighted, B, 1).kind == "iterable"
    listed = batches_of(ds)
    skipped = list(TrainBatches(listed, B, 1).epoch(0, start=5))
    assert len(skipped) == 3 and torch.equal(skipped[0][0], listed[5][0])


class NoParams(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Endless:
    """An iterable without len() that yields nothing."""

    def __iter__(self):
        return iter(())


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"model": NoParams()}, ValueError, "model NoParams has no trainable parameters"),
        (
            {"train_data": DataLoader(TensorDataset(torch.zeros(0, T, C), torch.zeros(0)), batch_size=4)},
            ValueError,
            "train_data is empty",
        ),
        ({"train_data": []}, ValueError, "train_data is empty"),
        ({"train_data": Endless()}, ValueError, "train_data yielded no batches in epoch 1"),
        ({"train_data": 3}, TypeError, "train_data must be"),
        ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'; valid: "),
        ({"loss": 1.5}, TypeError, "loss must be"),
        ({"metrics": ("accuracy", "f1")}, ValueError, "unknown metric 'f1'; valid: accuracy"),
        ({"method": "sgd-magic"}, ValueError, "unknown training method 'sgd-magic'; valid: bptt"),
        ({"optimizer": "adam"}, TypeError, "optimizer must be"),
        ({"optimizer": lambda params: "adam"}, TypeError, "optimizer: the factory must return"),
        (
            {"optimizer": torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)},
            ValueError,
            "optimizer 0 holds a tensor that is not a parameter of the model",
        ),
        ({"scheduler": "linear"}, ValueError, "scheduler must be"),
        (
            {"train_data": Endless(), "scheduler": "cosine"},
            ValueError,
            "scheduler='cosine' needs the number of batches",
        ),
        ({"scheduler": [None, None]}, ValueError, "scheduler: 2 scheduler factories for 1 optimisers"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"lr": float("nan")}, ValueError, "lr must be finite"),
        ({"weight_decay": float("inf")}, ValueError, "weight_decay must be finite"),
        ({"grad_clip": 0.0}, ValueError, "grad_clip must be > 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"callbacks": [42]}, TypeError, "callbacks entries must be"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_gives_clear_error_and_writes_nothing(data, tmp_path: Path, change, error, message) -> None:
    kwargs = {
        "model": Net(),
        "train_data": data[0],
        "epochs": 1,
        "device": "cpu",
        "progress": False,
        "run_dir": tmp_path / "run",
    }
    kwargs.update(change)
    model, train_data = kwargs.pop("model"), kwargs.pop("train_data")
    with pytest.raises(error) as e:
        fit(model, train_data, **kwargs)
    assert message in str(e.value)
    assert not (tmp_path / "run").exists()


def test_run_dir_holding_a_run_is_refused_without_resume(data, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit(Net(), data[0], epochs=1, device="cpu", progress=False, run_dir=run, plot_every=0)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(FileExistsError, match="already holds a run") as e:
        fit(Net(), data[0], epochs=1, device="cpu", progress=False, run_dir=run)
    assert str(run) in str(e.value) and "resume=True" in str(e.value)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with pytest.raises(ValueError, match="resume=True needs a run_dir"):
        fit(Net(), data[0], epochs=1, device="cpu", progress=False, resume=True)


def test_cosine_schedule_followed_and_batches_capped(data) -> None:
    epochs, steps, lr = 3, 4, 0.01
    result = fit(
        make_net(),
        data[0],
        epochs=epochs,
        lr=lr,
        scheduler="cosine",
        max_train_batches=steps,
        batch_size=B,
        device="cpu",
        progress=False,
    )
    for e, record in enumerate(result.history, start=1):
        closed_form = lr * (1 + math.cos(math.pi * e * steps / (epochs * steps))) / 2
        assert record["lr"] == pytest.approx(closed_form, rel=1e-9, abs=1e-15)
        assert record["global_step"] == e * steps
        assert record["samples"] == steps * B  # capped: 4 of the 8 batches per epoch
    # Without test data the records hold training figures only.
    assert "test_loss" not in result.history[-1] and result.test_accuracy is None and result.test_metrics == {}


class Count(Metric):
    """A plugged-in metric: the number of samples seen."""

    name = key = "count"

    def batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits.new_full((1,), target.shape[0], dtype=torch.float64)

    def result(self, sums: torch.Tensor) -> float:
        return float(sums[0])


def test_callable_loss_is_used_for_evaluation_too_and_metrics_plug_in(data) -> None:
    def run(loss):
        model = make_net()
        return fit(
            model,
            data[0],
            test_data=data[1],
            epochs=1,
            optimizer=lambda params: torch.optim.SGD(params, lr=0.0),  # no update: both runs see the same model
            loss=loss,
            metrics=["accuracy", Count()],
            device="cpu",
            progress=False,
        )

    plain = run("rate-ce")
    doubled = run(lambda out, y: 2 * rate_cross_entropy(out, y))
    assert doubled.test_loss == pytest.approx(2 * plain.test_loss, rel=1e-6)
    assert doubled.history[0]["train_loss"] == pytest.approx(2 * plain.history[0]["train_loss"], rel=1e-6)
    assert plain.test_metrics["count"] == len(data[1]) and plain.history[0]["train_count"] == len(data[0])


def test_grad_clip_limits_the_sgd_step(data) -> None:
    def step_norm(clip: float | None) -> float:
        model = make_net()
        w0 = torch.cat([p.detach().clone().flatten() for p in model.parameters()])
        fit(
            model,
            data[0],
            epochs=1,
            optimizer=lambda params: torch.optim.SGD(params, lr=1.0),  # one step moves the weights by -grad
            grad_clip=clip,
            max_train_batches=1,
            device="cpu",
            progress=False,
        )
        w1 = torch.cat([p.detach().flatten() for p in model.parameters()])
        return float((w1 - w0).norm())

    clip = 1e-3
    assert step_norm(None) > 10 * clip
    assert step_norm(clip) == pytest.approx(clip, rel=1e-4)


def test_runs_started_at_the_same_moment_get_distinct_directories(tmp_path: Path) -> None:
    name = "spoken-digits-mlp-s0-20250101-120000"  # the same timestamp for both
    a = create_run_dir(tmp_path, name, unique=True)
    b = create_run_dir(tmp_path, name, unique=True)
    c = create_run_dir(tmp_path, name, unique=True)
    assert (a.name, b.name, c.name) == (name, f"{name}-1", f"{name}-2")
    assert all(p.is_dir() for p in (a, b, c))
    with pytest.raises(FileExistsError):
        create_run_dir(tmp_path, name, unique=False)


def test_train_writes_no_run_directory_when_validation_fails(cfg) -> None:
    from snnkit.training import DataBundle

    empty = TensorDataset(torch.zeros(0, T, C), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="train_data is empty"):
        train(cfg, data=DataBundle(empty, empty, (C,), K), progress=False)
    assert not Path(cfg.out).exists() or not any(Path(cfg.out).iterdir())


def test_rate_ce_names_a_float_or_misshaped_target() -> None:
    from snnkit.training import rate_cross_entropy

    logits = torch.randn(5, 4, 3)
    with pytest.raises(TypeError, match="target must be an integer tensor"):
        rate_cross_entropy(logits, torch.zeros(4))
    with pytest.raises(ValueError, match=r"target must have shape \[B\] = \[4\]"):
        rate_cross_entropy(logits, torch.zeros(4, 3, dtype=torch.long))
