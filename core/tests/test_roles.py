"""A workload declares its roles once; a built instance lacking a member of one is an error at build."""

import pytest
from genaccel import GenaccelError, WorkloadSpec
from genaccel.registry import Registry
from genaccel.roles import AttentionSwitch, TokenModel, WeightStreaming, check_roles
from genaccel.runner import RunConfig, prepare


class Toy:
    module, random_weights = None, True
    model, eos_token_id, pad_token_id = None, 2, 0

    def make_samples(self, n, seed, max_new_tokens, seq_len=None):
        return []

    def describe(self):
        return {}

    def encode(self, text):
        return []

    def decode(self, ids):
        return ""

    def weight_bytes_per_step(self):
        return 0

    def kkv_bytes_per_token(self):  # misspelt: kv_bytes_per_token
        return 0


def _registry(*roles):
    registry = Registry()
    registry.add(WorkloadSpec(name="toy/t-t", description="a toy", build=lambda options: Toy(), presets=("tiny",),
                              default_preset="tiny", default_decoder="greedy", roles=roles))
    from genaccel.builtin.decoders import Greedy
    from genaccel.registry import DecoderSpec

    registry.add(DecoderSpec(name="greedy", description="argmax", factory=Greedy, requires="autoregressive"))
    return registry


def test_a_missing_member_fails_at_build_naming_workload_role_and_member():
    with pytest.raises(GenaccelError, match=r"workload toy/t-t declares role WeightStreaming .*lacks kv_bytes_per_token"):
        prepare(_registry(TokenModel, WeightStreaming), RunConfig(workload="toy/t-t"))
    ctx = prepare(_registry(TokenModel), RunConfig(workload="toy/t-t"))  # every member of what it declares
    assert ctx.has(TokenModel) and not ctx.has(WeightStreaming)
    assert "autoregressive" in ctx.workload.capabilities  # a role's capability comes with it


def test_every_member_is_checked():
    with pytest.raises(GenaccelError, match=r"role AttentionSwitch .*\(Toy\) lacks set_attention"):
        check_roles("toy/t-t", (AttentionSwitch,), Toy())
