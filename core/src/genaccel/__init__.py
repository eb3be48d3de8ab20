"""genaccel: characterize and accelerate inference of generative models.

The public API that plugins use; everything else is internal.  Names are imported on first use
(module ``__getattr__``), so that ``import genaccel`` and registering plugins import no torch.
"""

from __future__ import annotations

import importlib

from . import quiet

quiet.install()  # third-party messages that say nothing about the run (stdlib only)

_PUBLIC = {
    "GenaccelError": "errors",
    "HFCausalLM": "hf",
    "RowReduceLinear": "hf",
    "cpu_gemv_linears": "hf",
    "hookimpl": "hookspecs",
    "annotate": "profiling",
    "current_phase": "profiling",
    "phase": "profiling",
    "region": "profiling",
    "STAGES": "registry",
    "Command": "registry",
    "DecoderSpec": "registry",
    "OptimizationSpec": "registry",
    "Option": "registry",
    "Registry": "registry",
    "Stack": "registry",
    "WorkloadSpec": "registry",
    "BuildOptions": "workload",
    "CausalLMWorkload": "workload",
    "LengthDistribution": "workload",
    "TextSample": "workload",
    "check_checkpoint_dir": "workload",
    "code_corpus": "workload",
    "init_random_weights": "workload",
    "load_hf_checkpoint": "workload",
    "train_bpe_tokenizer": "workload",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'genaccel' has no attribute {name!r}")
    module = _PUBLIC[name]
    value = importlib.import_module(f"genaccel.{module or name}")
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
