"""The command line (``genaccel``): the parser and ``main`` (:mod:`.app`), the run arguments every
command shares (:mod:`.args`), one module per command group.  It may import every layer below it,
the run layer (torch) only inside the commands that run something."""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
