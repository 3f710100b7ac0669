"""``python -m snnkit <command>`` (and ``torchrun ... -m snnkit train``)."""

import sys

from snnkit.cli import main

sys.exit(main())
