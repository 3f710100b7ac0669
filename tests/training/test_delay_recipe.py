"""The delay-learning recipe through ``fit`` and ``snnkit train``: optimisers, schedules, sigma, clamping, evaluation
with rounded delays, the softmax-sum loss, exact resume, and the paper's claim on a small timing task."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from _training_data import tiny_config

from snnkit.models import DelaySNN
from snnkit.training import (
    ClampDelays,
    SigmaSchedule,
    SoftmaxSumAccuracy,
    Trainer,
    delay_recipe,
    fit,
    read_jsonl,
    resume,
    sigma_at,
    softmax_sum_cross_entropy,
    train,
)
from snnkit.training.losses import predict_softmax_sum

HERE = Path(__file__).parent


def tiny_model(**kw) -> DelaySNN:
    torch.manual_seed(0)
    args = {"hidden": (12,), "max_delay": 9, "dropout": 0.0}
    args.update(kw)
    return DelaySNN(4, 2, **args)


# A two-class timing task: channel 0 and channel 1 each fire once, channel 0 `lag` steps before channel 1 (class 0)
# or after it (class 1), at a random onset; channels 2-3 carry the same background noise for both classes. Only the
# relative timing tells the classes apart, and the paper's neurons (tau 1.005 steps) keep no memory of their own.
def timing_set(n: int, seed: int, T: int = 20, lag: int = 4, noise: float = 0.05) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (torch.rand(n, T, 4, generator=g) < noise).float()
    x[:, :, :2] = 0
    t0 = torch.randint(lag, T - 2 * lag, (n,), generator=g)
    first, second = torch.where(y == 0, t0, t0 + lag), torch.where(y == 0, t0 + lag, t0)
    x[torch.arange(n), first, 0] = 1.0
    x[torch.arange(n), second, 1] = 1.0
    return TensorDataset(x, y)


# ---------------------------------------------------------------------------------------------- loss and metric
def test_softmax_sum_loss_against_a_hand_computation() -> None:
    v = torch.tensor([[[1.0, 2.0, 0.0]], [[0.5, -1.0, 3.0]]])  # [T=2, B=1, K=3]
    y = torch.tensor([2])
    m = [sum(math.exp(v[t, 0, k]) / sum(math.exp(v[t, 0, j]) for j in range(3)) for t in range(2)) for k in range(3)]
    expected = -math.log(math.exp(m[2]) / sum(math.exp(mk) for mk in m))
    assert softmax_sum_cross_entropy(v, y).item() == pytest.approx(expected, rel=1e-6)
    assert predict_softmax_sum(v).tolist() == [max(range(3), key=lambda k: m[k])]
    # Differs from averaging the logits: two steps vote for class 1, one step's large potential wins the mean.
    w = torch.tensor([[[0.0, 3.0, 0.0]], [[0.0, 3.0, 0.0]], [[0.0, 0.0, 20.0]]])
    assert predict_softmax_sum(w).item() == 1 and w.mean(0).argmax(-1).item() == 2
    sums = SoftmaxSumAccuracy().batch(w, torch.tensor([1]))
    assert sums.tolist() == [1.0, 1.0]


def test_softmax_sum_loss_bad_input() -> None:
    with pytest.raises(ValueError, match=r"expected membrane potentials \[T, B, K\]"):
        softmax_sum_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer tensor of class indices"):
        softmax_sum_cross_entropy(torch.zeros(2, 2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"target must have shape \[B\] = \[2\]"):
        softmax_sum_cross_entropy(torch.zeros(2, 2, 3), torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------------------------------------- optimisers
def test_two_optimisers_over_disjoint_parameters_with_the_papers_rates() -> None:
    model = tiny_model(hidden=(6, 5))
    recipe = delay_recipe(model, epochs=4, steps_per_epoch=3)
    trainer = Trainer(model, timing_set(18, 0), epochs=4, batch_size=6, device="cpu", progress=False,
                      **recipe.fit_kwargs())
    weights, positions = trainer.optimizers
    w_ids = {id(p) for g in weights.param_groups for p in g["params"]}
    p_ids = {id(p) for g in positions.param_groups for p in g["params"]}
    assert p_ids == {id(layer.positions) for layer in model.delay_layers()}
    assert w_ids.isdisjoint(p_ids) and w_ids | p_ids == {id(p) for p in model.parameters()}
    assert isinstance(weights, torch.optim.Adam) and isinstance(positions, torch.optim.Adam)
    assert weights.param_groups[0]["weight_decay"] == 1e-5 and positions.param_groups[0]["weight_decay"] == 0
    one_cycle, cosine = trainer.schedulers
    assert isinstance(one_cycle, torch.optim.lr_scheduler.OneCycleLR) and one_cycle.total_steps == 12
    assert weights.param_groups[0]["max_lr"] == pytest.approx(5e-3)
    assert isinstance(cosine, torch.optim.lr_scheduler.CosineAnnealingLR) and cosine.T_max == 12
    assert positions.param_groups[0]["lr"] == pytest.approx(0.1)
    assert trainer.scheduler_interval == "step" and trainer.loss_fn is softmax_sum_cross_entropy
    # Per epoch when the batches per epoch are unknown (the paper's code steps its schedulers per epoch).
    per_epoch = delay_recipe(model, epochs=4)
    assert per_epoch.scheduler_interval == "epoch"


def test_frozen_delays_get_one_optimiser() -> None:
    model = tiny_model(delays="random")
    opts = delay_recipe(model, epochs=2).optimizer(model.parameters())
    assert len(opts) == 1 and {id(p) for p in opts[0].param_groups[0]["params"]} == {
        id(p) for p in model.parameters() if p.requires_grad}


def test_recipe_bad_arguments() -> None:
    with pytest.raises(ValueError, match="has no DelayedLinear layer"):
        delay_recipe(torch.nn.Linear(2, 2), epochs=2)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        delay_recipe(tiny_model(), epochs=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer or None"):
        delay_recipe(tiny_model(), epochs=2, steps_per_epoch=0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        delay_recipe(tiny_model(), epochs=2, lr=-1.0)
    with pytest.raises(ValueError, match="final must be a finite number > 0"):
        SigmaSchedule(final=0.0)


# ---------------------------------------------------------------------------------------------- sigma schedule
def test_sigma_schedule_values() -> None:
    # sigma_0 = 12 (max_delay 25), 8 epochs: quarter = 2 epochs, factor (0.23 / 12)^(1/2) per epoch.
    assert [sigma_at(k, 8, 12) for k in range(4)] == pytest.approx([12.0, math.sqrt(12 * 0.23), 0.23, 0.23])
    # 150 epochs (SHD): factor (0.23 / 12)^(1 / 37.5) per epoch, 0.23 from epoch 38 on.
    factor = (0.23 / 12) ** (1 / 37.5)
    assert sigma_at(1, 150, 12) == pytest.approx(12 * factor)
    assert sigma_at(37, 150, 12) == pytest.approx(12 * factor**37) and sigma_at(37, 150, 12) > 0.23
    assert sigma_at(38, 150, 12) == 0.23 and sigma_at(149, 150, 12) == 0.23
    assert sigma_at(0, 1, 12) == 12.0 and sigma_at(3, 4, 0.1) == 0.1


def test_sigma_schedule_through_fit_sets_each_epochs_width() -> None:
    # max_delay 9: sigma_0 = 4, 8 epochs; the layer's width is the scheduled value + 0.27 (dcls's offset).
    model = tiny_model()
    seen: list[list[float]] = []

    class Record(SigmaSchedule.__mro__[1]):  # a plain Callback
        def on_batch_end(self, trainer) -> None:
            if trainer.step == 1:
                seen.append([layer.sigma for layer in model.delay_layers()])

    kwargs = delay_recipe(model, epochs=8, steps_per_epoch=2).fit_kwargs()
    kwargs["callbacks"].append(Record())
    result = fit(model, timing_set(16, 0), epochs=8, batch_size=8, device="cpu", progress=False, **kwargs)
    expected = [0.27 + s for s in (4.0, math.sqrt(4 * 0.23), 0.23, 0.23, 0.23, 0.23, 0.23, 0.23)]
    assert [s[0] for s in seen] == pytest.approx(expected) and all(len(set(s)) == 1 for s in seen)
    assert [r["sigma"] for r in result.history] == pytest.approx(expected)


def test_frozen_delay_layers_keep_their_integer_delays() -> None:
    model = tiny_model(delays="random")
    before = [layer.delays.clone() for layer in model.delay_layers()]
    fit(model, timing_set(16, 0), epochs=2, batch_size=8, device="cpu", progress=False,
        **delay_recipe(model, 2, 2).fit_kwargs())
    assert all(torch.equal(b, layer.delays) for b, layer in zip(before, model.delay_layers()))


# ---------------------------------------------------------------------------------------------- clamping, eval
def test_positions_are_clamped_after_every_step() -> None:
    model = tiny_model()
    outside: list[bool] = []

    def watch(trainer) -> None:
        # Runs after ClampDelays (the recipe's callbacks come first): no position may be outside the range.
        outside.append(any(bool((l.positions < 0).any() or (l.positions > 8).any()) for l in model.delay_layers()))

    kwargs = delay_recipe(model, epochs=2, steps_per_epoch=4, lr=0.5).fit_kwargs()  # position lr 50: huge steps
    kwargs["callbacks"].append(watch)
    fit(model, timing_set(32, 0), epochs=2, batch_size=8, device="cpu", progress=False, **kwargs)
    assert len(outside) == 8 and not any(outside)
    p = torch.cat([layer.positions.detach().flatten() for layer in model.delay_layers()])
    assert p.min() == 0 and p.max() == 8  # the steps did push positions against both ends


def test_clamp_callback_alone_clamps() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.blocks[0]["delay"].positions[0, 0] = -3.0
        model.readout_delay.positions[0, 0] = 11.5

    class _Trainer:  # the callback reads only trainer.model
        pass

    t = _Trainer()
    t.model = model
    ClampDelays().on_batch_end(t)
    assert model.blocks[0]["delay"].positions[0, 0] == 0 and model.readout_delay.positions[0, 0] == 8


def test_evaluation_uses_rounded_delays_without_changing_positions() -> None:
    model = tiny_model()
    data = timing_set(24, 0)
    result = fit(model, data, test_data=data, epochs=1, batch_size=8, device="cpu", progress=False,
                 **delay_recipe(model, 1, 3).fit_kwargs())
    assert any(not torch.equal(l.positions, l.positions.round()) for l in model.delay_layers())  # still real-valued
    rounded = copy.deepcopy(model)
    for layer in rounded.delay_layers():
        layer.round_delays()
    rounded.train()  # integer delays even in training mode (no dropout in this model)
    for bn in rounded.modules():
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.eval()
    x, y = torch.stack([d[0] for d in data]).transpose(0, 1), torch.stack([d[1] for d in data])
    with torch.no_grad():
        expected = softmax_sum_cross_entropy(rounded(x), y).item()
        model.train()
        blurred = softmax_sum_cross_entropy(model(x), y).item()
    assert result.history[-1]["test_loss"] == pytest.approx(expected, rel=1e-5)
    assert abs(blurred - expected) > 1e-4  # the Gaussian taps of training would have given another loss


# ---------------------------------------------------------------------------------------------- snnkit train path
def delay_config(out: str, name: str = "run", **kw):
    cfg = tiny_config(out, name)
    # lr / weight_decay not set (None): the recipe's own, as when `snnkit train` is not given --lr / --weight-decay.
    kw = {"lr": None, "weight_decay": None, **kw}
    return replace(cfg, model="delay-snn", model_kwargs={"hidden": [16], "max_delay": 5, "dropout": 0.3}, **kw)


def test_config_run_uses_the_models_recipe(bundle, tmp_path) -> None:
    trainer = Trainer.from_config(delay_config(str(tmp_path)), bundle, progress=False)
    assert len(trainer.optimizers) == 2 and trainer.loss_fn is softmax_sum_cross_entropy
    assert trainer.optimizers[0].param_groups[0]["max_lr"] == pytest.approx(5e-3)  # the recipe's, not --lr 1e-2
    assert trainer.optimizers[1].param_groups[0]["initial_lr"] == pytest.approx(0.1)
    assert [type(c).__name__ for c in trainer.callbacks[:2]] == ["SigmaSchedule", "ClampDelays"]
    assert isinstance(trainer.metrics[0], SoftmaxSumAccuracy)
    explicit = Trainer.from_config(delay_config(str(tmp_path), lr=2e-3, weight_decay=0.0), bundle, progress=False)
    assert explicit.optimizers[0].param_groups[0]["max_lr"] == pytest.approx(1e-2)  # 5 x the given lr
    assert explicit.optimizers[1].param_groups[0]["initial_lr"] == pytest.approx(0.2)
    assert explicit.optimizers[0].param_groups[0]["weight_decay"] == 0.0
    # A typed value equal to AdamW's default is still the user's choice.
    typed = Trainer.from_config(delay_config(str(tmp_path), lr=1e-2), bundle, progress=False)
    assert typed.optimizers[0].param_groups[0]["max_lr"] == pytest.approx(5e-2)
    plain = Trainer.from_config(
        replace(delay_config(str(tmp_path)), model_kwargs={"hidden": [16], "max_delay": 5, "training_recipe": None}),
        bundle, progress=False,
    )
    assert len(plain.optimizers) == 1 and isinstance(plain.optimizers[0], torch.optim.AdamW)


class Killed(Exception):
    pass


def kill_after(global_step: int):
    def callback(trainer: Trainer) -> None:
        if trainer.global_step == global_step:
            raise Killed

    return callback


@pytest.fixture(scope="module")
def delay_reference(bundle, tmp_path_factory):
    return train(delay_config(str(tmp_path_factory.mktemp("ref"))), data=bundle, progress=False)


# 8 batches per epoch, checkpoints every 2: killed mid-epoch 1 (5), and mid-epoch 2 where sigma has changed (11).
@pytest.mark.parametrize("kill_at", [5, 11])
def test_killed_run_resumes_to_the_same_weights_and_sigma(bundle, tmp_path, delay_reference, kill_at) -> None:
    cfg = delay_config(str(tmp_path))
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(kill_at)], progress=False)
    resumed = resume(Path(cfg.out) / cfg.name, data=bundle, progress=False)
    a, b = resumed.model.state_dict(), delay_reference.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
    sig = [layer.sigma for layer in resumed.model.delay_layers()]
    assert sig == [layer.sigma for layer in delay_reference.model.delay_layers()] == [0.5, 0.5]
    records = read_jsonl(Path(cfg.out) / cfg.name / "metrics.jsonl")
    assert [r["sigma"] for r in records] == [r["sigma"] for r in delay_reference.history] == [2.27, 0.5]
    assert [r["test_acc"] for r in records] == [r["test_acc"] for r in delay_reference.history]


# ---------------------------------------------------------------------------------------------- the paper's claim
def test_learned_delays_beat_no_delays_on_a_timing_task() -> None:
    """Hammouamri et al.: learned delays let memoryless spiking neurons read relative spike timing. Same network,
    data, seed and budget (15 epochs of 8 batches); only the delays differ."""
    train_set, test_set = timing_set(256, 1), timing_set(256, 2)
    acc = {}
    for delays in ("learned", "zero"):
        torch.manual_seed(0)
        model = DelaySNN(4, 2, hidden=(32,), max_delay=9, dropout=0.0, delays=delays)
        result = fit(model, train_set, test_data=test_set, epochs=15, batch_size=32, device="cpu", progress=False,
                     seed=0, **delay_recipe(model, 15, 8).fit_kwargs())
        acc[delays] = result.test_accuracy
    assert acc["zero"] < 0.62  # no delays: about chance
    assert acc["learned"] > 0.85 and acc["learned"] - acc["zero"] > 0.25, acc


# ---------------------------------------------------------------------------------------------- the comparison script
def test_run_delays_script_end_to_end_on_a_tiny_budget(tmp_path) -> None:
    """scripts/run_delays.py on the bundled spoken digits, 2 batches per mode (the full comparison is in
    docs/delays.md): every mode runs, the table's numbers are the runs' numbers, the JSON is complete."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("run_delays", HERE.parents[1] / "scripts" / "run_delays.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(["--epochs", "1", "--seeds", "0", "--max-train-batches", "2", "--modes", "learned",
                              "zero", "--model-arg", "hidden=[16]", "--out", str(tmp_path / "d.json")])
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "d.json").read_text())
    assert [r["mode"] for r in saved["runs"]] == ["learned", "zero"] and saved["model"]["hidden"] == [16]
    for row, run in zip(saved["summary"], saved["runs"]):
        assert row["test_acc"] == [run["test_acc"]] and 0.0 <= run["test_acc"] <= 1.0
        assert len(run["history"]) == 1 and run["history"][0]["samples"] == 64
    assert report["summary"][0]["test_acc_mean"] == saved["summary"][0]["test_acc_mean"]


def test_cli_model_args_reach_the_model(bundle, tmp_path) -> None:
    from snnkit import cli

    cfg = cli.train_config(["--model", "delay-snn", "--model-arg", "delays=zero", "--model-arg", "hidden=[8]",
                            "--model-arg", "max_delay=3", "--device", "cpu", "--out", str(tmp_path)])
    trainer = Trainer.from_config(cfg, bundle, progress=False)
    model = trainer.model
    assert isinstance(model, DelaySNN) and model.delay_mode == "zero" and model.max_delay == 3
    assert [b["norm"].num_features for b in model.blocks] == [8]
    assert len(trainer.optimizers) == 1  # frozen delays: the weights' optimiser only
    assert [type(c).__name__ for c in trainer.callbacks[:2]] == ["SigmaSchedule", "ClampDelays"]
