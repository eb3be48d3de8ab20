"""genaccel: characterize and accelerate inference of generative models.

The public API that plugins use; everything else is internal.
"""

from .errors import GenaccelError
from .hf import HFCausalLM, RowReduceLinear, cpu_gemv_linears
from .hookspecs import hookimpl
from .profiling import annotate, current_phase, phase, region
from .registry import STAGES, DecoderSpec, OptimizationSpec, Registry, Stack, WorkloadSpec
from .workload import (
    BuildOptions,
    CausalLMWorkload,
    LengthDistribution,
    TextSample,
    check_checkpoint_dir,
    code_corpus,
    init_random_weights,
    load_hf_checkpoint,
    train_bpe_tokenizer,
)

__all__ = [
    "STAGES",
    "BuildOptions",
    "CausalLMWorkload",
    "DecoderSpec",
    "GenaccelError",
    "HFCausalLM",
    "LengthDistribution",
    "OptimizationSpec",
    "Registry",
    "RowReduceLinear",
    "Stack",
    "TextSample",
    "WorkloadSpec",
    "annotate",
    "phase",
    "region",
    "check_checkpoint_dir",
    "code_corpus",
    "current_phase",
    "cpu_gemv_linears",
    "hookimpl",
    "init_random_weights",
    "load_hf_checkpoint",
    "train_bpe_tokenizer",
]
