"""Shared by every package's tests, alone or together (pytest loads the rootdir's conftest)."""

import os

import pytest
import torch

if not torch.cuda.is_available():  # Triton kernels run in its interpreter on CPU; read when a kernel is decorated,
    os.environ.setdefault("TRITON_INTERPRET", "1")  # so set before any test module imports one


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    """Keep what tests build (tokenizers, machine figures) out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GENACCEL_CACHE", str(tmp_path_factory.mktemp("genaccel-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def registry():
    """What the installed plugins register (a test module may define its own toy registry)."""
    from genaccel.plugin.manager import default_registry

    return default_registry()
