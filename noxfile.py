"""Sessions: tests (core alone, each plugin alone, then everything together), bench, lint.

torch is pinned to the CPU wheel by default; set GENACCEL_TORCH to override, e.g.
``GENACCEL_TORCH="torch==2.11.0" nox -s bench`` on a CUDA machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).parent
TORCH = os.environ.get("GENACCEL_TORCH", "torch==2.13.0")
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLES = sorted(f"examples/{p.name}" for p in (ROOT / "examples").iterdir() if (p / "pyproject.toml").exists())


def _install(session: nox.Session, *packages: str) -> None:
    session.install(TORCH)  # first, so that nothing pulls a CUDA build of torch
    session.install("pytest>=8", "jsonschema", *(f"-e{ROOT / p}" for p in packages))


@nox.session
@nox.parametrize("package", ["core", *PLUGINS, "all"])
def tests(session: nox.Session, package: str) -> None:
    """Tests of one package with only what it needs installed; 'all' runs every package's tests together."""
    env = {"GENACCEL_CACHE": str(Path(session.create_tmp()) / "cache")}
    if package == "core":
        _install(session, "core")
        session.run("genaccel", "list", env=env)  # the core alone works and lists no workloads
        session.run("python", "-c", "from genaccel.plugins import default_registry as r; "
                    "assert r().workloads == {}, r().workloads", env=env)
        session.run("pytest", "-q", "core/tests", *session.posargs, env=env)
    elif package == "all":  # every plugin, and the example optimization plugin a user would write
        _install(session, "core", *(f"plugins/{p}" for p in PLUGINS), *EXAMPLES)
        session.run("pytest", "-q", "core/tests", *(f"plugins/{p}/tests" for p in PLUGINS), "tests",
                    *(f"{e}/tests" for e in EXAMPLES), *session.posargs, env=env)
    else:
        _install(session, "core", f"plugins/{package}")
        session.run("pytest", "-q", f"plugins/{package}/tests", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Run bench.toml over every installed plugin; writes reports/<timestamp>/."""
    _install(session, "core", *(f"plugins/{p}" for p in PLUGINS))
    out = ROOT / "reports" / time.strftime("%Y%m%d-%H%M%S")
    session.run("genaccel", "bench", str(ROOT / "bench.toml"), "--out", str(out), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
