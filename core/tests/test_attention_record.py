"""The attention-call record: the lengths read from a call (transformers' form, diffusers' form), the sites found
in a module tree, and ``genaccel characterize-study`` over a toy workload with an image-size option writing
Figs. 8 and 9 and their data."""

import json
from types import SimpleNamespace

import pytest
import torch
from genaccel.api import IMAGE_SIZE, AttentionSite, WorkloadSpec, call_lengths, find_attention_sites, hookimpl
from genaccel.cli import main
from genaccel.engine.attention import record_attention
from genaccel.plugin.roles import AttentionRecord, BatchRunner
from genaccel.testing import registry_with
from torch import nn

CHANNELS = 4


class PatchAttention(nn.Module):
    """Self-attention over an image's pixels (B, H·W, C), its own qkv projection inside."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(CHANNELS, 3 * CHANNELS)

    def forward(self, hidden_states):
        q, k, v = self.qkv(hidden_states).chunk(3, dim=-1)
        return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v


class ToyImageModel(nn.Module):
    """Attention at full resolution, then at half (a 2×2 pooling between)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, CHANNELS, 3, padding=1)
        self.fine, self.coarse = PatchAttention(), PatchAttention()

    def forward(self, x):
        h = self.conv(x)
        for attention in (self.fine, self.coarse):
            b, c, hh, ww = h.shape
            h = attention(h.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, hh, ww)
            h = nn.functional.avg_pool2d(h, 2) if attention is self.fine else h
        return h


class ToyImages:
    random_weights = True
    period_options: dict = {}

    def __init__(self, options):
        torch.manual_seed(options.seed)
        self.side = options.options.get("image_size") or 8
        self.module = ToyImageModel().eval()

    def make_samples(self, n, seed, max_new_tokens, seq_len=None):
        return [SimpleNamespace(id=f"image/{i}", input_lengths={"pixels": self.side**2}) for i in range(n)]

    def describe(self):
        return {"side": self.side}

    def attention_sites(self):
        return find_attention_sites(self.module, self_kind="spatial")

    @torch.no_grad()
    def run_batch(self, batch):
        out = self.module(torch.randn(len(batch), 3, self.side, self.side))
        return {"outputs": [o.flatten()[:2].tolist() for o in out], "model_s": 0.0, "phases": {},
                "records": [{} for _ in batch]}


class ToyPlugin:
    @hookimpl
    def genaccel_register_workloads(self, register):
        register(WorkloadSpec(name="toy/images", description="attention at two resolutions", build=ToyImages,
                              presets=("tiny",), default_preset="tiny", default_decoder="nar", unit="image",
                              roles=(BatchRunner, AttentionRecord), options=(IMAGE_SIZE,)))
        register(WorkloadSpec(name="toy/plain", description="no attention record", build=ToyImages,
                              presets=("tiny",), default_preset="tiny", default_decoder="nar", roles=(BatchRunner,)))


@pytest.fixture
def cli(monkeypatch):
    registry = registry_with(ToyPlugin())
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    return main


class IFLikeAttention(nn.Module):
    """A stand-in for a diffusers Attention with added K/V (its keys: its positions and the text)."""

    added_kv_proj_dim, only_cross_attention = 8, False


def test_lengths_from_attention_weights_and_from_hidden_states():
    weights = torch.zeros(1, 2, 3, 10)  # transformers' eager attention: (B, H, Lq, Lk), cached keys included
    assert call_lengths(nn.Identity(), (), {"hidden_states": torch.zeros(1, 3, 8)}, (None, weights)) == (3, 10, False)
    encoder = torch.zeros(1, 12, 8)
    assert call_lengths(nn.Identity(), (), {"key_value_states": encoder}, (None, weights))[2] is True
    pixels = torch.zeros(2, 8, 4, 4)  # diffusers: (B, C, H, W) inside a VAE or IF's UNet
    assert call_lengths(nn.Identity(), (pixels,), {}, pixels) == (16, 16, False)
    text = torch.zeros(2, 77, 8)
    assert call_lengths(nn.Identity(), (pixels,), {"encoder_hidden_states": text}, pixels) == (16, 77, True)
    assert call_lengths(IFLikeAttention(), (pixels,), {"encoder_hidden_states": text}, pixels) == (16, 16 + 77, False)


def test_sites_are_the_innermost_attention_modules_and_temporal_inside_a_temporal_block():
    class OuterAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = PatchAttention()

    class TemporalBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = PatchAttention()

    root = nn.ModuleDict({"a": OuterAttention(), "t": TemporalBlock(), "p": PatchAttention()})
    sites = {s.name: s.kind for s in find_attention_sites(root, "root")}
    assert sites == {"root.a.inner": None, "root.t.attn": "temporal", "root.p": None}
    with pytest.raises(ValueError, match="attention kind 'diagonal'"):
        AttentionSite(name="x", module=nn.Identity(), kind="diagonal")


def test_a_call_with_a_batch_of_its_own_and_one_without_context_is_self():
    model = ToyImageModel()
    sites = [AttentionSite(name="fine", module=model.fine, lengths=lambda m, a, k, o: (5, 6, False, 3))]
    with record_attention(sites) as calls:
        model(torch.zeros(2, 3, 4, 4))
    assert [(c["kind"], c["query_len"], c["key_len"], c["batch"]) for c in calls] == [("self", 5, 6, 3)]
    assert calls[0]["flops"] == 4 * 3 * 5 * 6 * CHANNELS and calls[0]["seconds"] >= 0


@pytest.mark.parametrize("command", ["characterize-study", "characterize-diffusion"])
def test_characterize_study_writes_figures_8_and_9_and_their_data(cli, tmp_path, command):
    out = tmp_path / "char"
    assert cli([command, "toy/images", "--image-sizes", "8,16", "--out", str(out)]) == 0
    doc = json.loads((out / "characterization.json").read_text())
    assert set(doc["figures"]) == {"fig8", "fig9", "fig5"}  # no diffusion profile: no Figs. 10-14
    for name in doc["figures"].values():
        assert (out / name).stat().st_size > 1000 and (out / name).read_bytes()[:4] == b"\x89PNG"
    records = doc["workloads"][0]["records"]
    assert [r["image_size"] for r in records] == [None, 8, 16]
    lengths = [[(c["kind"], c["query_len"], c["key_len"]) for c in r["calls"]] for r in records]
    assert lengths == [[("spatial", 64, 64), ("spatial", 16, 16)]] * 2 + [[("spatial", 256, 256), ("spatial", 64, 64)]]
    assert records[2]["lengths"]["spatial"] == {"calls": 2, "query_min": 64, "query_max": 256, "key_min": 64,
                                                "key_max": 256, "constant": False}
    assert "fig8-sequence-lengths.png" in (out / "characterization.md").read_text()
    point = doc["workloads"][0]["roofline"]  # one inference at its own 8 px: a conv, then attention at 64 and 16 pixels
    qkv = CHANNELS * 3 * CHANNELS
    conv = 2 * CHANNELS * 8 * 8 * 3 * 9  # output elements × (3 input channels × 3×3)
    attend = sum(2 * n * qkv + 2 * 2 * n * n * CHANNELS for n in (64, 16))  # the qkv projection, Q·Kᵀ and P·V
    assert point["flops"] == conv + attend
    assert point["parameter_bytes"] == 4 * (CHANNELS * 3 * 9 + CHANNELS + 2 * (qkv + 3 * CHANNELS))
    assert point["bound"] in ("memory-bound", "compute-bound") and point["study"] is None
    assert all("Roofline (Fig. 5)" in (out / name).read_text() for name in ("characterization.md", "characterization.html"))


def test_characterize_study_refuses_a_workload_without_an_attention_record(cli, tmp_path, capsys):
    assert cli(["characterize-study", "toy/plain", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "'toy/plain' has no attention record" in err and err.count("\n") == 1 and not (tmp_path / "p").exists()
