#!/usr/bin/env python
"""Train a SpikeGPT language model: ``python scripts/train_lm.py [--data corpus.txt] [--resume runs/<run>]``.

Thin wrapper over ``snnkit train-lm`` (same flags; see ``--help``).
"""

import sys

from snnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-lm", *sys.argv[1:]]))
