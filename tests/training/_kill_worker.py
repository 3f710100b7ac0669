"""Subprocess for test_resume: train the tiny config and SIGKILL itself after batch N (argv: out name N)."""

import os
import signal
import sys

from _training_data import tiny_bundle

from snnkit.training import TrainConfig, train

out, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = TrainConfig(
    dataset="tiny",
    model="mlp",
    model_kwargs={"hidden": [24], "dropout": 0.3},
    epochs=2,
    batch_size=8,
    lr=1e-2,
    device="cpu",
    seed=3,
    ckpt_every=2,
    plot_every=0,
    out=out,
    name=name,
)


def die(trainer) -> None:
    if trainer.global_step == n:
        os.kill(os.getpid(), signal.SIGKILL)


train(cfg, data=tiny_bundle(), callbacks=[die], progress=False)
