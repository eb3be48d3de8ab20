"""The names plugins and tests import from ``genaccel.hf``; the code lives in
:mod:`genaccel.causal_lm` (the step protocol), :mod:`genaccel.speculation`,
:mod:`genaccel.footprint`, :mod:`genaccel.gemv` and :mod:`genaccel.flex_decode`."""

from .causal_lm import HFCausalLM
from .flex_decode import SDPA_FLEX_DECODE, sdpa_flex_decode
from .footprint import _nbytes, nbytes
from .gemv import RowReduceLinear, cpu_gemv_linears

__all__ = ["HFCausalLM", "RowReduceLinear", "SDPA_FLEX_DECODE", "_nbytes", "cpu_gemv_linears", "nbytes",
           "sdpa_flex_decode"]
