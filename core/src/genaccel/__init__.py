"""genaccel: characterize and accelerate inference of generative models.

Plugins use :mod:`genaccel.api`, the public API; every other module is internal.  The package's
layers, bottom to top (each imports only those below it; ``docs/ARCHITECTURE.md`` draws them):

``errors``, ``files``, ``quiet`` → ``plugin`` (contracts and registration, no torch) → ``engine`` →
``models`` → ``llm``, ``diffusion`` → ``distributed`` → ``decoders`` → ``optimizations`` →
``report`` → ``run`` → ``cli``; ``api`` and ``testing`` sit beside ``cli`` at the top.
"""

from __future__ import annotations

from importlib import metadata

from . import quiet

quiet.install()  # third-party messages that say nothing about the run (stdlib only)

try:
    __version__ = metadata.version("genaccel")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without installation
    __version__ = "0+unknown"
