"""phenaki/t-v's attention record on the tiny preset (Golden et al. 2024, Fig. 8): one parallel-decoding step of
MaskGIT, the same lengths at every step, then C-ViViT's decoder over the token grid, temporal and spatial."""

from __future__ import annotations

import functools

import genaccel_phenaki
from genaccel.api import record_attention
from genaccel.testing import attention_record, make_batches, prepared, registry_fixture, tiny

WORKLOAD = "phenaki/t-v"
LAYERS = 2  # the tiny MaskGIT's

registry = registry_fixture(genaccel_phenaki)
config = functools.partial(tiny, WORKLOAD, samples=1, batch_size=1)


def _lengths(calls: list[dict]) -> list[tuple]:
    return [(c["module"].split(".")[0], c["kind"], c["query_len"], c["key_len"], c["batch"]) for c in calls]


def test_one_step_of_maskgit_then_the_cvivit_decoder_over_its_patch_grid(registry):
    """5 frames of 32x32 in 8x8 patches, 2 frames a temporal patch: (1+2) time steps of a 4x4 grid, 48 tokens,
    prompts padded to the preset's 64 T5 tokens; guidance's two streams as one batch of 2."""
    rec = attention_record(registry, config())
    inst = prepared(registry, config()).instance
    (t, g, _), text = inst.token_grid, inst.preset.text_length
    assert (t, g, text) == (3, 4, 64) and rec["period_options"] == {"num_inference_steps": 1}
    maskgit = [("maskgit", "self", t * g * g, t * g * g, 2), ("maskgit", "cross", t * g * g, text, 2)] * LAYERS
    cvivit = [("cvivit", "temporal", t, t, g * g), ("cvivit", "spatial", g * g, g * g, t)]  # the decoder's order
    assert _lengths(rec["calls"]) == maskgit + cvivit


def test_maskgit_lengths_are_the_same_at_every_step(registry):
    ctx = prepared(registry, config(options={"num_inference_steps": 3}))
    batch = make_batches(ctx)[0]
    with record_attention(ctx.instance.attention_sites()) as calls:
        ctx.decoder.run(ctx, batch)
    maskgit = [c for c in _lengths(calls) if c[0] == "maskgit"]
    per_step = 2 * LAYERS
    assert len(maskgit) == 3 * per_step and maskgit == maskgit[:per_step] * 3
    assert len({c[2] for c in maskgit}) == 1  # the query: every video token at every step
