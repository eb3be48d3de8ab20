"""Test support for plugins' and genaccel's own tests: a registry holding chosen plugins, tiny run
configs, a prepared run and its first batch, a whole measured case, an attention-call record, checks that
several plugins' tests share, and the command line with its exit code and output.  Tests import these instead
of the run layer's internals."""

from __future__ import annotations

import math

import attrs
import torch

from .cli.app import main
from .errors import GenaccelError
from .plugin.manager import build_registry, default_registry, make_plugin_manager
from .plugin.registry import Registry
from .run.attention import record_workload
from .run.case import run_case
from .run.config import RunConfig
from .run.context import RunContext, make_batches
from .run.prepare import prepare
from .run.resolve import resolve


def registry_with(*plugins, entry_points: bool = False) -> Registry:
    """A registry of the built-ins and ``plugins`` (modules or objects with hook implementations; each
    registered under its ``__name__`` or class name), without the installed entry points unless asked."""
    pm = make_plugin_manager(load_entry_points=entry_points)
    for plugin in plugins:
        pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
    return build_registry(pm)


def registry_fixture(*plugins):
    """A module-scoped pytest fixture of :func:`registry_with` these plugins: ``registry = registry_fixture(mod)``."""
    import pytest  # a test dependency, not a runtime one

    @pytest.fixture(scope="module")
    def registry():
        return registry_with(*plugins)

    return registry


def installed() -> Registry:
    """What the installed plugins register."""
    return default_registry()


def tiny(workload: str, **fields) -> RunConfig:
    """A run of ``workload``'s tiny preset, 2 samples in one batch of 2, unless ``fields`` say otherwise
    (``options``: the run's option values, by name)."""
    return RunConfig(workload=workload, **{"preset": "tiny", "samples": 2, "batch_size": 2, **fields})


def prepared(registry: Registry, config: RunConfig, *, apply: bool = True, strict: bool = True) -> RunContext:
    """``config`` resolved and prepared (its stack applied unless ``apply`` is False)."""
    return prepare(resolve(registry, config, strict=strict), apply=apply)


def first_batch(registry: Registry, config: RunConfig) -> tuple:
    """The prepared run, its first batch and the decoder's result on it: (ctx, batch, result)."""
    ctx = prepared(registry, config)
    batch = (ctx.batches or make_batches(ctx))[0]
    return ctx, batch, ctx.decoder.run(ctx, batch)


def measure(registry: Registry, config: RunConfig, **kwargs):
    """One measured case (:class:`genaccel.report.results.CaseResult`) of ``config``."""
    return run_case(resolve(registry, config), **kwargs)


def attention_record(registry: Registry, config: RunConfig, image_size: int | None = None) -> dict:
    """The attention-call record of one period of ``config``'s workload (:func:`genaccel.run.attention.record_workload`):
    ``calls`` in order, each with its ``module``, ``kind``, ``query_len`` and ``key_len``."""
    return record_workload(registry, config, image_size=image_size)


def with_options(config: RunConfig, **options) -> RunConfig:
    """``config`` with these option values added."""
    return attrs.evolve(config, options={**config.options, **options})


def one_line_error(fn, *args, **kwargs) -> str:
    """The message of the :class:`~genaccel.errors.GenaccelError` that ``fn(*args, **kwargs)`` raises, which
    must be one line (what the command line prints)."""
    try:
        fn(*args, **kwargs)
    except GenaccelError as e:
        message = str(e)
    else:
        raise AssertionError(f"{getattr(fn, '__name__', fn)} raised no GenaccelError")
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def check_token_accuracy(case: dict) -> dict:
    """Assert that a report case's token accuracy impact holds together, so that a wrong count fails:
    the rates are the means of the samples', and each sample's agreement fits its first difference
    (all positions agree before it, at least one from it on; none: every token the reference's).
    Returns the accuracy block."""
    acc, lengths = case["accuracy"], {r["id"]: r["output_tokens"] for r in case["samples"]}
    rows = acc["samples"]
    assert math.isclose(acc["token_agreement"], sum(s["token_agreement"] for s in rows) / len(rows)), acc
    assert math.isclose(acc["exact_match_rate"], sum(s["exact"] for s in rows) / len(rows)), acc
    for s in rows:
        n, first = lengths[s["id"]], s["first_difference"]
        if first is None:
            assert s["token_agreement"] == 1 and s["exact"], s
        else:
            assert not s["exact"] and first / n <= s["token_agreement"] <= (n - 1) / n, (s, n)
    return acc


def check_bf16_kv(registry: Registry, config: RunConfig) -> dict:
    """Assert that ``bf16-kv`` on ``config``'s static cache (SDPA) stores every cached key and value in
    bfloat16 while the model computes in float32, and that the run is lossy with its accuracy impact
    measured.  Returns the measured case's accuracy block."""
    stack = (*config.optimizations, "sdpa", "static-kv", "bf16-kv")
    ctx = prepared(registry, attrs.evolve(config, optimizations=stack))
    model = ctx.instance.model
    model.setup(1, 32)
    assert model.dtype == torch.float32
    assert {t.dtype for t in (*model.cache.keys, *model.cache.values)} == {torch.bfloat16}
    assert "bytes per position instead of" in ctx.notes["bf16-kv"]
    case = measure(registry, attrs.evolve(config, optimizations=stack), progress=False).to_dict()
    assert case["lossless"] is False and case["accuracy"], case
    return case["accuracy"]


def check_cfg_sequential(registry: Registry, config: RunConfig, key: str) -> tuple:
    """Assert that classifier-free guidance gives the same ``extra[key]`` (a tensor: a masked-token workload's
    tokens) on ``config``'s first batch batched (``cfg``: both streams in one pass over the weights) and sequential
    (``cfg-sequential``: two passes).  Returns both results."""
    import torch  # a test's dependency: the tensors compared

    _, _, batched = first_batch(registry, attrs.evolve(config, decoder="cfg"))
    _, _, sequential = first_batch(registry, attrs.evolve(config, decoder="cfg-sequential"))
    assert torch.equal(batched.extra[key], sequential.extra[key]), key
    assert (batched.weight_passes, sequential.weight_passes) == (1, 2)
    return batched, sequential


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``genaccel ARGV...`` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


__all__ = ["RunConfig", "check_bf16_kv", "check_cfg_sequential", "check_token_accuracy", "cli", "first_batch", "installed",
           "make_batches", "measure", "one_line_error", "prepared", "registry_fixture",
           "registry_with", "tiny", "with_options"]
