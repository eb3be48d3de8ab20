"""Sessions: tests (core alone, each plugin alone, then everything together), bench, lint, and the
GPU check: wheelhouse (prepares wheels, with a registry) and gpu (runs from them, without one).

torch is pinned to the CPU wheel by default; set GENACCEL_TORCH to override, e.g.
``GENACCEL_TORCH="torch==2.11.0" nox -s bench`` on a CUDA machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).parent
TORCH = os.environ.get("GENACCEL_TORCH", "torch==2.13.0")
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLES = sorted(f"examples/{p.name}" for p in (ROOT / "examples").iterdir() if (p / "pyproject.toml").exists())
PYTEST = ("pytest", "-q", "--durations=25")
# A plugin's tests are mostly single-threaded Python (tracing, compiling, tiny models): they run on every
# core at once, in worker processes of one thread each (pytest-xdist; a file's tests stay in one worker, in
# order, with its module fixtures).  The core's run in one process, with torch's threads, which its native
# kernels' tests split work between.
WORKERS = min(4, os.cpu_count() or 1)
PARALLEL = ("-n", str(WORKERS), "--dist", "loadfile") if WORKERS > 1 else ()
PARALLEL_ENV = {"OMP_NUM_THREADS": "1"} if WORKERS > 1 else {}  # one thread per worker


def _pip_find_links() -> list[str]:
    """pip's find-links (a folder of wheels kept on the machine, such as a CPU torch wheel), which uv
    does not read by itself: from PIP_FIND_LINKS, else from pip's configuration files."""
    links = os.environ.get("PIP_FIND_LINKS")
    if links is None:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                              capture_output=True, text=True, check=False)
        links = done.stdout if done.returncode == 0 else ""
    return links.split()


def _with_extra(package: str) -> str:
    """``-e package``, with its ``test`` extra where its pyproject.toml declares one (what its own
    tests need beyond its dependencies: triton for HSTU's kernel in the interpreter, gguf for Llama's export)."""
    import tomllib  # Python 3.11+, like the rest of what nox runs here

    extras = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    return f"-e{ROOT / package}" + ("[test]" if "test" in extras else "")


def _install(session: nox.Session, *packages: str, test_extra: bool = False) -> None:
    """torch, then pytest and ``packages`` editable (with their test extras when ``test_extra``)."""
    uv = session.venv_backend == "uv"
    links = [a for link in _pip_find_links() for a in ("--find-links", link)] if uv else []
    session.install(*links, TORCH)  # first, so that nothing pulls a CUDA build of torch
    session.install("pytest>=8", "pytest-xdist>=3", "jsonschema",
                    *(_with_extra(p) if test_extra else f"-e{ROOT / p}" for p in packages))


@nox.session
@nox.parametrize("package", ["core", *PLUGINS, "all"])
def tests(session: nox.Session, package: str) -> None:
    """Tests of one package with only what it needs installed; 'all' installs every plugin and runs
    what needs them together (tests/ and the example plugin's tests), not each package's tests again."""
    env = {"GENACCEL_CACHE": str(Path(session.create_tmp()) / "cache")}
    if package == "core":
        _install(session, "core")
        session.run("genaccel", "list", env=env)  # the core alone works and lists no workloads
        session.run("python", "-c", "from genaccel.plugin.manager import default_registry as r; "
                    "assert r().workloads == {}, r().workloads", env=env)
        session.run(*PYTEST, "core/tests", *session.posargs, env=env)
    elif package == "all":  # every plugin, and the example optimization plugin a user would write
        _install(session, "core", *(f"plugins/{p}" for p in PLUGINS), *EXAMPLES)
        session.install("selenium")  # the browser test drives the system Chromium (apt-get install chromium chromium-driver)
        session.run(*PYTEST, *PARALLEL, "tests", *(f"{e}/tests" for e in EXAMPLES), *session.posargs,
                    env={**env, **PARALLEL_ENV})
    else:
        _install(session, "core", f"plugins/{package}", test_extra=True)
        session.run(*PYTEST, *PARALLEL, f"plugins/{package}/tests", *session.posargs, env={**env, **PARALLEL_ENV})


@nox.session
def bench(session: nox.Session) -> None:
    """Run bench.toml over every installed plugin; writes reports/<timestamp>/."""
    _install(session, "core", *(f"plugins/{p}" for p in PLUGINS))
    out = ROOT / "reports" / time.strftime("%Y%m%d-%H%M%S")
    session.run("genaccel", "bench", str(ROOT / "bench.toml"), "--out", str(out), *session.posargs)


@nox.session
def llamacpp(session: nox.Session) -> None:
    """llama.cpp as a reference engine: the core with its llamacpp extra (llama-cpp-python builds
    llama.cpp from source; minutes) and the model plugins, then the GGUF export and llama.cpp tests."""
    session.install(TORCH)
    session.install("pytest>=8", f"-e{ROOT / 'core'}[llamacpp]", f"-e{ROOT / 'plugins' / 'llama'}",
                    f"-e{ROOT / 'plugins' / 'hf'}")
    env = {"GENACCEL_CACHE": str(Path(session.create_tmp()) / "cache")}
    session.run(*PYTEST, "plugins/llama/tests/test_gguf.py", "plugins/hf/tests/test_hf_gguf.py", *session.posargs,
                env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import contracts of pyproject.toml (import-linter): the core's layers import only
    downward, plugins only genaccel.api.  The packages are installed without their dependencies: the
    contracts read the source."""
    session.install("ruff", "import-linter")
    session.install("--no-deps", *(f"-e{ROOT / p}" for p in ["core", *(f"plugins/{p}" for p in PLUGINS), *EXAMPLES]))
    session.run("ruff", "check", ".")
    session.run("lint-imports")


# --- the GPU check ---------------------------------------------------------------------------
# Beforehand, on a machine with a registry:  GENACCEL_TORCH="torch==2.11.0" nox -s wheelhouse
# (for another machine's Python and platform: nox -s wheelhouse -- --python-version 3.12
#  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --only-binary=:all:).
# Then on the GPU machine, with no registry:  pip install --no-index --find-links wheelhouse nox &&
# GENACCEL_TORCH="torch==2.11.0" nox -s gpu   (GENACCEL_TORCH=system: the machine's own torch).

WHEELHOUSE = Path(os.environ.get("GENACCEL_WHEELHOUSE", ROOT / "wheelhouse"))
GPU_TOOLS = ("pytest>=8", "jsonschema", "nox")


def _requirements() -> list[str]:
    """The third-party requirements of the core and every plugin (their own pyproject.toml)."""
    import tomllib

    reqs: list[str] = []
    for pkg in ["core", *(f"plugins/{p}" for p in PLUGINS)]:
        project = tomllib.loads((ROOT / pkg / "pyproject.toml").read_text())["project"]
        reqs += [r for r in project.get("dependencies", []) if not r.startswith("genaccel")]
    return sorted(set(reqs))


def _distributions() -> list[str]:
    import tomllib

    return [tomllib.loads((ROOT / pkg / "pyproject.toml").read_text())["project"]["name"]
            for pkg in ["core", *(f"plugins/{p}" for p in PLUGINS)]]


@nox.session(venv_backend="none")
def wheelhouse(session: nox.Session) -> None:
    """Every wheel `nox -s gpu` installs, into ./wheelhouse (GENACCEL_WHEELHOUSE): genaccel's own
    packages built here, and torch (GENACCEL_TORCH; GENACCEL_TORCH_INDEX for another index, e.g.
    https://download.pytorch.org/whl/cu128) with every requirement downloaded.  Extra arguments go
    to pip download (a target machine's --python-version and --platform)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    session.run(*pip, "wheel", "--no-deps", "-w", str(WHEELHOUSE), str(ROOT / "core"),
                *(str(ROOT / "plugins" / p) for p in PLUGINS), external=True)
    index = os.environ.get("GENACCEL_TORCH_INDEX")
    if TORCH != "system":
        session.run(*pip, "download", "-d", str(WHEELHOUSE), TORCH, *(["--index-url", index] if index else []),
                    *session.posargs, external=True)
    session.run(*pip, "download", "-d", str(WHEELHOUSE), *_requirements(), *GPU_TOOLS, *session.posargs,
                *(["--extra-index-url", index] if index else []), external=True)


@nox.session(venv_params=["--system-site-packages"])
def gpu(session: nox.Session) -> None:
    """The GPU check, from the wheelhouse alone when there is one: the tests marked gpu, then
    bench-gpu.toml (Llama 7B bf16 through CUDA graphs, HSTU paper at 4K, Chameleon 7B it-t) into
    one report under reports/gpu-<timestamp>/."""
    offline = ["--no-index", "--find-links", str(WHEELHOUSE)] if WHEELHOUSE.is_dir() else []
    if TORCH != "system":  # system: the machine's own CUDA torch (this venv sees its site-packages)
        session.install(*offline, TORCH)
    if offline:  # genaccel's own wheels, built by the wheelhouse session (an editable build would need setuptools)
        session.install(*offline, *GPU_TOOLS[:2], *_distributions())
    else:
        session.install(*GPU_TOOLS[:2], f"-e{ROOT / 'core'}", *(f"-e{ROOT / 'plugins' / p}" for p in PLUGINS))
    session.run("python", "-c", "import torch; assert torch.cuda.is_available(), 'nox -s gpu needs a CUDA device'; "
                "print(torch.__version__, torch.cuda.get_device_name())")
    env = {"GENACCEL_CACHE": str(Path(session.create_tmp()) / "cache")}
    session.run("pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "core/tests",
                *(f"plugins/{p}/tests" for p in PLUGINS), "tests", *session.posargs, env=env)
    out = ROOT / "reports" / time.strftime("gpu-%Y%m%d-%H%M%S")
    session.run("genaccel", "bench", str(ROOT / "bench-gpu.toml"), "--out", str(out), env=env)
