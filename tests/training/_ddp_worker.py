"""One rank of the DDP test, launched by torchrun (argv: out directory).

In one process group (created here, so snnkit joins it rather than creating its own) each rank runs:
1. an uninterrupted 2-epoch run ``full``;
2. the same run ``killed``, crashed by an exception on every rank after batch 7 (epoch 2, between checkpoints);
3. ``resume`` of ``killed``;
4. a one-epoch SLTT run ``sltt`` (per-step backward passes, one gradient all-reduce per batch).
Each rank saves the weights it ends with to ``<out>/<run>/rank<r>.pt`` for the test to compare.
"""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from _training_data import tiny_bundle, tiny_config

from snnkit.training import TrainConfig, resume, train

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
dist.init_process_group("gloo")


class Crash(Exception):
    pass


def crash_after_7(trainer) -> None:
    if trainer.global_step == 7:
        raise Crash


def config(name: str) -> TrainConfig:
    return tiny_config(str(out), name)


full = train(config("full"), data=tiny_bundle(), progress=False)
torch.save(full.model.state_dict(), out / "full" / f"rank{rank}.pt")
try:
    train(config("killed"), data=tiny_bundle(), callbacks=[crash_after_7], progress=False)
    raise AssertionError("the crash callback did not fire")
except Crash:
    pass
assert dist.is_initialized(), "snnkit must not destroy a process group it did not create"
resumed = resume(out / "killed", data=tiny_bundle(), progress=False)
torch.save(resumed.model.state_dict(), out / "killed" / f"rank{rank}.pt")
# SLTT: one backward per step, gradients all-reduced once per batch (no_sync on the others).
sltt_cfg = config("sltt")
sltt_cfg.method, sltt_cfg.epochs = "sltt", 1
sltt = train(sltt_cfg, data=tiny_bundle(), progress=False)
torch.save(sltt.model.state_dict(), out / "sltt" / f"rank{rank}.pt")
# Tear down in lock step, then skip interpreter shutdown: gloo's background threads can otherwise still be joinable
# when the C++ runtime unwinds, and a rank aborts with "terminate called without an active exception" after all its
# work is saved (seen about once in five loaded CI runs).
dist.barrier()
dist.destroy_process_group()
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
