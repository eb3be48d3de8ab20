"""``python -m genaccel.cli ...``: what torchrun starts on every node of a multi-node run."""

import sys

from .app import main

sys.exit(main())
