"""A workload declares its roles once, in its spec; a built instance lacking a member of one, or whose
member cannot be called as the role says, is an error at build naming the workload, role and member."""

import pytest
from genaccel.api import (
    AttentionSwitch,
    GenaccelError,
    KVCacheSwitch,
    TokenModel,
    WeightStreaming,
    WorkloadSpec,
    hookimpl,
)
from genaccel.plugin.role import Role, check_roles
from genaccel.testing import RunConfig, cli, prepared, registry_with


class Steps:
    """A step protocol that does nothing."""

    num_layers = 1

    def setup(self, batch_size, max_seq_len):
        pass

    def prefill(self, input_ids, valid=None):
        pass

    def decode(self, tokens, pos, kv_len=None):
        pass


class Toy:
    module, random_weights = None, True
    model, eos_token_id, pad_token_id = Steps(), 2, 0

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

    def set_cache(self):  # takes no kind: not callable as KVCacheSwitch.set_cache(kind)
        pass


class ToyPlugin:
    """A plugin written against the public API only; its roles come from the test."""

    def __init__(self, *roles):
        self.roles = roles

    @hookimpl
    def genaccel_register_workloads(self, register):
        register(WorkloadSpec(name="toy/t-t", description="a toy", build=lambda options: Toy(), presets=("tiny",),
                              default_preset="tiny", default_decoder="greedy", roles=self.roles))


def test_a_missing_member_fails_at_build_naming_workload_role_and_member():
    with pytest.raises(GenaccelError, match=r"workload toy/t-t declares role WeightStreaming .*lacks kv_bytes_per_token"):
        prepared(registry_with(ToyPlugin(TokenModel, WeightStreaming)), RunConfig(workload="toy/t-t"))
    ctx = prepared(registry_with(ToyPlugin(TokenModel)), RunConfig(workload="toy/t-t"))  # what it declares it has
    assert ctx.has(TokenModel) and not ctx.has(WeightStreaming)
    assert "autoregressive" in ctx.workload.capabilities  # a role's capability comes with it


def test_every_member_is_checked():
    with pytest.raises(GenaccelError, match=r"role AttentionSwitch .*\(Toy\) lacks set_attention"):
        check_roles("toy/t-t", (AttentionSwitch,), Toy())


def test_a_member_with_another_signature_fails_at_build():
    with pytest.raises(GenaccelError, match=r"role KVCacheSwitch .*has set_cache\(\), which cannot be called as "
                                            r"set_cache\(kind\)"):
        check_roles("toy/t-t", (KVCacheSwitch,), Toy())


def test_a_protocol_member_is_checked_through_its_value():
    toy = Toy()
    toy.model = object()  # not a step protocol
    with pytest.raises(GenaccelError, match=r"role TokenModel .*lacks model\.num_layers; lacks model\.setup"):
        check_roles("toy/t-t", (TokenModel,), toy)


def test_roles_are_declared_in_the_spec_not_inherited():
    class Inherits(Toy, AttentionSwitch):  # the role's stub would satisfy the check without doing anything
        pass

    with pytest.raises(GenaccelError, match="inherits role classes; a workload declares its roles in its WorkloadSpec"):
        check_roles("toy/t-t", (TokenModel,), Inherits())


def test_a_derived_role_offers_its_base():
    class Base(Role):
        capability = "base-thing"

    class Derived(Base):
        capability = "derived-thing"

        def go(self): ...

    spec = WorkloadSpec(name="a/b", description="", build=lambda o: None, presets=("a",), default_preset="a",
                        default_decoder="g", roles=(Derived,))
    assert spec.offers((Base,)) == [] and spec.offers((TokenModel,)) == [TokenModel]
    assert {"base-thing", "derived-thing"} <= set(spec.capabilities)


def test_the_command_line_names_the_lacking_member_in_one_line(monkeypatch, capsys, tmp_path):
    registry = registry_with(ToyPlugin(TokenModel, WeightStreaming))
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    code, out, err = cli(capsys, "run", "toy/t-t", "--preset", "tiny", "--samples", "1", "--out", str(tmp_path / "o"))
    assert code == 2 and out == "" and not (tmp_path / "o").exists()
    assert err.strip().splitlines() == [
        "genaccel: error: workload toy/t-t declares role WeightStreaming but its instance (Toy) lacks kv_bytes_per_token"]
