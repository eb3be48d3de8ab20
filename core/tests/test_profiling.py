"""The breakdown: categories from annotations and op names, phases, shares that add up."""

import attrs
import pytest
import torch
from genaccel.api import BatchRunner, WorkloadSpec, annotate, hookimpl, phase
from genaccel.engine.profiling import CATEGORIES, module_category, op_category, shares
from genaccel.llm.kvcache import StaticKVCache
from genaccel.plugin.manager import build_registry, make_plugin_manager
from genaccel.run.profile import profile_workload
from genaccel.run.resolve import resolve
from genaccel.testing import RunConfig
from torch import nn


@attrs.frozen
class Sample:
    id: str
    input_lengths: dict = attrs.field(factory=lambda: {"x": 1})


class Attention(nn.Module):  # categorized by its name; the time is in batched matmuls
    def forward(self, q):
        s = torch.softmax(q @ q.transpose(-1, -2), -1)
        return s @ q


class Toy:
    """A non-autoregressive workload whose time is almost all in one kind of work."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "linear":
            self.module = nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(6)])
            self.x = torch.randn(512, 1024)
        elif kind == "attention":
            self.module = Attention()
            self.x = torch.randn(32, 512, 128)
        else:  # a plugin-defined category and phase, and a KV-cache reorder
            self.module = nn.Sequential(annotate(nn.Linear(256, 256), "Conv"))
            self.x = torch.randn(128, 256)
            self.cache = StaticKVCache(2, 4, 2, 64, 16, dtype=torch.float32, device="cpu")
        self.model, self.random_weights, self.eos_token_id, self.pad_token_id = self.module, True, None, 0

    def describe(self):
        return {"kind": self.kind}

    def make_samples(self, n, seed, max_new_tokens=None, seq_len=None):
        return [Sample(id=str(i)) for i in range(n)]

    @torch.no_grad()
    def run_batch(self, batch):
        import time

        t0 = time.perf_counter()
        with phase("main"):
            for _ in range(3):
                y = self.module(self.x)
        if self.kind == "custom":
            with phase("reorder"):
                for _ in range(20):
                    self.cache.reorder(torch.tensor([3, 2, 1, 0]))
        return {"outputs": [[0]] * len(batch), "model_s": time.perf_counter() - t0, "phases": {}, "y": y}


class ToyPlugin:
    @hookimpl
    def genaccel_register_workloads(self, register):
        for kind in ("linear", "attention", "custom"):
            register(WorkloadSpec(name=f"toy/{kind}", description="toy", build=lambda o, k=kind: Toy(k), presets=("tiny",),
                                  default_preset="tiny", default_decoder="nar", roles=(BatchRunner,)))


@pytest.fixture(scope="module")
def registry():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy")
    return build_registry(pm)


def _profile(registry, kind):
    return profile_workload(registry, resolve(registry, RunConfig(workload=f"toy/{kind}", preset="tiny", samples=1, warmup=1)))


@pytest.mark.parametrize("kind, category", [("linear", "Linear"), ("attention", "Attention")])
def test_a_toy_model_lands_in_its_category(registry, kind, category):
    prof = _profile(registry, kind)
    sh = shares(prof["phases"]["main"], "cpu")
    # the toy's own kind of work dominates; the rest is profiler and Python overhead, which a busy machine inflates
    assert sh[category] >= 0.8 and sh[category] == max(sh.values()), sh
    assert abs(sum(sh.values()) - 1) < 0.02  # categories and overhead add up to the phase's wall time
    assert prof["dilation"] > 0 and prof["phases"]["main"]["calls"] == 1
    if kind == "linear":  # 3 passes of 6 linears: 2·512·1024·1024 multiply-adds each, plus biases
        assert prof["work"]["phases"]["main"]["flops"] == 3 * 6 * 2 * 512 * 1024 * 1024


def test_plugin_annotations_and_phases_and_kv_reorder_show_up(registry):
    prof = _profile(registry, "custom")
    assert set(prof["phases"]) == {"main", "reorder"}
    assert shares(prof["phases"]["main"], "cpu")["Conv"] > 0.5  # the plugin's annotation wins over its type
    assert prof["phases"]["reorder"]["categories"]["KV-cache reorder"] > 0
    assert prof["phases"]["reorder"]["calls"] == 1
    assert prof["work"]["phases"]["reorder"]["flops"] == 0


def test_categories_by_module_and_op_name():
    assert module_category(nn.Linear(2, 2)) == "Linear"
    assert module_category(nn.LayerNorm(2)) == "Norm"
    assert module_category(nn.Embedding(2, 2)) == "Embedding"
    assert module_category(nn.SiLU()) == "Activation"
    assert module_category(nn.Sequential()) is None
    assert op_category("aten::addmm") == "Linear"
    assert op_category("aten::_scaled_dot_product_flash_attention_for_cpu") == "Attention"
    assert op_category("aten::native_layer_norm") == "Norm"
    assert op_category("aten::index_copy_") == "KV-cache update"
    assert op_category("aten::cat") == "Other"
    with pytest.raises(ValueError, match="category 'Bogus'"):
        annotate(nn.Linear(1, 1), "Bogus")
    assert "KV-cache reorder" in CATEGORIES

