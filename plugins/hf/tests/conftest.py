"""hf/t-t's tests: the plugin registered explicitly (it is not installed as an entry point), the tiny
folders of :mod:`tiny_models` built once per session, and prompt files."""

from __future__ import annotations

import genaccel_hf
import pytest
from genaccel.testing import registry_fixture
from tiny_models import PROMPTS, save_tiny

registry = registry_fixture(genaccel_hf)


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """A function: the saved tiny folder of an architecture (built once per session)."""
    made = {}

    def get(name: str):
        if name not in made:
            made[name] = save_tiny(name, tmp_path_factory.mktemp(name))
        return made[name]

    return get


@pytest.fixture(scope="session")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts")
    for name, text in PROMPTS.items():
        (path / name).write_text(text)
    return path
