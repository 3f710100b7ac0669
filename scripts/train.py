#!/usr/bin/env python
"""Train a spiking network: ``python scripts/train.py [--dataset ...] [--resume runs/<run>]``.

Thin wrapper over ``snnkit train`` (same flags; see ``--help``).
"""

import sys

from snnkit.cli import train_command

if __name__ == "__main__":
    sys.exit(train_command(sys.argv[1:], prog="scripts/train.py"))
