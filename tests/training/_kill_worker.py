"""Subprocess for test_resume: train the tiny config and SIGKILL itself after batch N (argv: out name N)."""

import os
import signal
import sys

from _training_data import tiny_bundle, tiny_config

from snnkit.training import train

out, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = tiny_config(out, name)


def die(trainer) -> None:
    if trainer.global_step == n:
        os.kill(os.getpid(), signal.SIGKILL)


train(cfg, data=tiny_bundle(), callbacks=[die], progress=False)
