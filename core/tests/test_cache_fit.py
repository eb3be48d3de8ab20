from types import SimpleNamespace

import pytest
from genaccel.api import GenaccelError
from genaccel.run.context import fit_cache
from genaccel.testing import RunConfig


def _batches(batch_size):
    # the longest prompt and the most new tokens come from different samples
    samples = [SimpleNamespace(id=0, input_ids=[1] * 167, max_new_tokens=10),
               SimpleNamespace(id=1, input_ids=[1] * 20, max_new_tokens=1066)]
    return [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]


def test_cache_is_sized_to_each_batch_padded_prompt_plus_its_steps():
    assert fit_cache(RunConfig(workload="x/y", batch_size=1), _batches(1)) == 1088  # 20 + 1066, to 64s
    assert fit_cache(RunConfig(workload="x/y", batch_size=2), _batches(2)) == 1280  # 167 (padded) + 1066
    with pytest.raises(GenaccelError, match=r"the batch of samples 0, 1: a prompt of 167 tokens .* at least 1233"):
        fit_cache(RunConfig(workload="x/y", batch_size=2, cache_len=1152), _batches(2))
    assert fit_cache(RunConfig(workload="x/y", batch_size=1, cache_len=1152), _batches(1)) == 1152
