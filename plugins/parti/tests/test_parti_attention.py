"""parti/t-i's attention record on the tiny preset (Golden et al. 2024, Fig. 8): the decoder's self-attention keys
grow by one a decode step, its cross-attention keys are the text, the encoder attends over the text alone."""

from __future__ import annotations

import attrs
import genaccel_parti
from genaccel.testing import RunConfig, attention_record, prepared, registry_fixture

registry = registry_fixture(genaccel_parti)
TOKENS = 8  # image tokens written: the prefill's and 7 decode steps'
LAYERS = 2  # the tiny preset's encoder and decoder layers
GRID = 8 * 8  # the tiny ViT-VQGAN's token grid
CONFIG = RunConfig(workload="parti/t-i", preset="tiny", max_new_tokens=TOKENS)


def _calls(rec: dict, part: str) -> list[tuple]:
    """(kind, query length, key length, batch) of the calls of the modules whose names hold ``part``."""
    return [(c["kind"], c["query_len"], c["key_len"], c["batch"]) for c in rec["calls"] if part in c["module"]]


def test_decoder_keys_grow_by_one_a_step_and_cross_keys_are_the_text(registry):
    rec = attention_record(registry, CONFIG)
    (sample,) = prepared(registry, CONFIG).instance.make_samples(1, CONFIG.seed, TOKENS)
    text = len(sample.source_ids)
    assert rec["period_options"] == {} and text > 2
    # guidance: the prompt (batch 1) then the empty prompt, "</s>" alone, through every encoder layer
    assert _calls(rec, "encoder.layers") == [("self", text, text, 1)] * LAYERS + [("self", 1, 1, 1)] * LAYERS
    for layer in range(LAYERS):  # the conditional and unconditional streams as one batch of 2
        own = f"decoder.layers.{layer}."
        assert _calls(rec, own + "self_attn") == [("self", 1, k, 2) for k in range(1, TOKENS + 1)]
        assert _calls(rec, own + "encoder_attn") == [("cross", 1, text, 2)] * TOKENS
    assert _calls(rec, "vitvqgan.decoder") == [("spatial", GRID, GRID, 1)]  # its one block, once


def test_the_record_runs_the_baseline_stack(registry):
    """A stack of the static cache and the compiled step is dropped: its cache would give every step the whole
    window's keys, not the growing sequence the study plots."""
    stacked = attrs.evolve(CONFIG, optimizations=("sdpa", "static-kv", "compile"))
    lengths = [[(c["module"], c["query_len"], c["key_len"]) for c in attention_record(registry, cfg)["calls"]]
               for cfg in (CONFIG, stacked)]
    assert lengths[0] == lengths[1]
