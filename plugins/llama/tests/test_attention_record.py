"""The attention-call record of a token model: one whole generation, the key length growing by one a step."""

from genaccel.testing import RunConfig, attention_record, prepared

NEW = 5


def test_key_length_grows_by_one_per_decode_step(registry):
    config = RunConfig(workload="llama/t-t", preset="tiny", max_new_tokens=NEW)
    rec = attention_record(registry, config)
    layers = prepared(registry, config).instance.model.num_layers
    assert len(rec["calls"]) == NEW * layers and {c["kind"] for c in rec["calls"]} == {"self"}
    first = [c for c in rec["calls"] if c["module"] == rec["calls"][0]["module"]]
    prompt = first[0]["query_len"]
    assert [c["query_len"] for c in first] == [prompt] + [1] * (NEW - 1)  # prefill, then a token a step
    assert [c["key_len"] for c in first] == [prompt + i for i in range(NEW)]
