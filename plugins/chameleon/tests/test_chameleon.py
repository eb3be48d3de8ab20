"""Chameleon on the tiny preset: CFG, equivalence with transformers, images in and out, bad input."""

import json

import numpy as np
import pytest
import torch
from genaccel.api import GenaccelError
from genaccel.cli import main
from genaccel.decoders.guidance import CFG, SequentialCFG
from genaccel.testing import RunConfig, check_bf16_kv, make_batches, measure, prepared
from genaccel_chameleon.vqgan import ImageTokenizer, load_image_tokenizer, save_release_format
from PIL import Image


def _ctx(registry, task, **kw):
    return prepared(registry, RunConfig(workload=f"chameleon/{task}", preset="tiny", **kw))


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "static-kv", "compile")], ids=["eager", "compiled"])
def test_batched_cfg_draws_the_same_tokens_as_sequential_cfg(registry, stack):
    """Compiled, three graphs of one step function alternate (batch 2B; B; the twin's B): each
    call must still run its own (later steps of a batch skip dynamo's guards)."""
    ctx = _ctx(registry, "t-i", samples=2, batch_size=2, optimizations=stack)
    ctx.instance.module.double()  # float64: one forward of 2B and two of B round alike
    ctx.instance.image_tokenizer.double()
    batch = make_batches(ctx)[0]
    batched, sequential = CFG(temperature=0.7, top_p=0.9), SequentialCFG(temperature=0.7, top_p=0.9)
    a, b = batched.run(ctx, batch), sequential.run(ctx, batch)
    inst = ctx.instance
    assert a.outputs == b.outputs
    n = inst.image_tokens
    for row in a.outputs:
        assert len(row) == n + 1 and row[-1] == inst.eoi  # exactly grid² image tokens, then end-of-image
        assert all(int(inst.bpe_to_code[t]) >= 0 for t in row[:-1])  # every one in the image vocabulary
    assert len({tuple(r) for r in a.outputs}) == 2  # different prompts, different images
    assert a.decode_steps == b.decode_steps == n - 1
    assert (a.weight_passes, b.weight_passes) == (1, 2)  # one forward per step, or two
    assert set(a.phases) == {"prefill", "decode", "image decode"}
    assert a.records[0]["image_size"] == [64, 64]


def test_guidance_changes_the_image(registry):
    outs = []
    for scale in ("0", "3"):
        ctx = _ctx(registry, "t-i", options={"guidance_scale": scale})
        batch = make_batches(ctx)[0]
        outs.append(ctx.decoder.run(ctx, batch).outputs)
    assert outs[0] != outs[1]


def test_t_i_writes_pngs_of_the_configured_size(registry, tmp_path):
    case = measure(registry, RunConfig(workload="chameleon/t-i", preset="tiny", samples=2, warmup=0,
                                        out_dir=str(tmp_path)), progress=False).to_dict()
    for rec in case["samples"]:
        assert rec["output_tokens"] == 256
        (path,) = rec["files"]
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (64, 64) and im.mode == "RGB"
    assert case["summary"]["latency_s"]["mean"] > 0


@pytest.mark.parametrize("task, steps", [("i-t", 30), ("it-t", 10)])
def test_greedy_equals_transformers_generate(registry, task, steps):
    """transformers encodes the image itself (its VQ model, its placeholder substitution) and masks
    image tokens from text; genaccel's loop must give the same greedy tokens."""
    ctx = _ctx(registry, task, decoder="greedy", samples=2)
    inst = ctx.instance
    samples = inst.make_samples(2, seed=0, max_new_tokens=None)
    assert all(s.max_new_tokens == steps and s.input_lengths["image"] == 256 for s in samples)
    ctx.max_seq_len = 512
    ours = ctx.decoder.run(ctx, samples).outputs  # a batch of two prompts of different lengths
    for sample, mine in zip(samples, ours):
        ids = torch.tensor([sample.input_ids])
        with torch.no_grad():
            ref = inst.module.generate(input_ids=ids, pixel_values=sample.image[None], do_sample=False,
                                       max_new_tokens=steps, pad_token_id=inst.pad_token_id)
        assert ref[0, ids.shape[1]:].tolist() == mine
    assert not any(int(inst.bpe_to_code[t]) >= 0 for row in ours for t in row)  # text only


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lossless_stacks_keep_i_t_greedy_tokens(registry, dtype):
    def outputs(stack):
        ctx = _ctx(registry, "i-t", decoder="greedy", optimizations=stack, samples=2, batch_size=2, dtype=dtype)
        assert ctx.instance.model.dtype == getattr(torch, dtype)
        batch = make_batches(ctx)[0]
        codes.append(ctx.instance.image_tokenizer.encode(torch.stack([s.image for s in batch]).to(getattr(torch, dtype))))
        encoder = ctx.instance.image_tokenizer.encoder_steps
        # the float32 image encoder is on the fast path (bfloat16's stays eager: other rounding, other codes)
        assert (encoder.compile is not None) == ("compile" in stack and dtype == "float32")
        return ctx.decoder.run(ctx, batch).outputs

    codes = []
    base = outputs(())
    assert outputs(("sdpa", "static-kv", "compile")) == base
    assert torch.equal(codes[0], codes[1])  # compiled channels-last encoder: the same image codes


def test_image_codes_round_trip(registry):
    inst = _ctx(registry, "t-i").instance
    tok = inst.image_tokenizer
    pixels = inst.make_samples(1, 0, None)  # t-i samples hold no image: take the photographs directly
    from genaccel_chameleon import inputs

    photo = inputs.preprocess(inputs.sample_images()[0][1], inst.image_size)[None]
    assert photo.shape == (1, 3, 64, 64) and -1 <= photo.min() < photo.max() <= 1
    codes = tok.encode(photo)
    assert codes.shape == (1, 256) and torch.equal(codes, tok.encode(photo))  # deterministic
    bpe = inst.code_to_bpe[codes]
    assert torch.equal(inst.bpe_to_code[bpe], codes)  # codes → vocabulary → codes
    every = torch.arange(tok.config.num_embeddings)
    z = tok.quantize.embedding(every)[:, :, None, None]  # each codebook vector quantizes to itself
    assert torch.equal(tok.quantize(z)[2], every)
    image = tok.decode(codes)
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()
    assert pixels[0].image is None


def test_release_vqgan_files_load_with_their_names(tmp_path):
    from genaccel_chameleon.workload import vq_config

    torch.manual_seed(0)
    model = ImageTokenizer(vq_config("tiny"))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_release_format(model, tmp_path / "tokenizer")
    names = set(torch.load(tmp_path / "tokenizer" / "vqgan.ckpt")["state_dict"])
    assert {"decoder.conv_in.weight", "decoder.up.0.block.0.norm1.weight", "decoder.up.1.upsample.conv.weight",
            "decoder.mid.attn_1.q.weight", "encoder.down.0.block.0.conv1.weight", "quantize.embedding.weight",
            "post_quant_conv.weight"} <= names
    loaded = load_image_tokenizer(tmp_path / "tokenizer")
    codes = torch.randint(0, 256, (2, 256))
    assert torch.allclose(loaded.decode(codes), model.decode(codes))
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.equal(loaded.encode(photo), model.encode(photo))


def test_broken_image_tokenizer_files_fail_clearly(tmp_path):
    from genaccel_chameleon.workload import vq_config

    with pytest.raises(GenaccelError, match="needs vqgan.yaml and vqgan.ckpt"):
        load_image_tokenizer(tmp_path)
    save_release_format(ImageTokenizer(vq_config("tiny")), tmp_path)
    (tmp_path / "vqgan.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(GenaccelError, match="cannot read"):
        load_image_tokenizer(tmp_path)
    (tmp_path / "vqgan.yaml").write_text("model: [")
    with pytest.raises(GenaccelError, match="not a VQGAN yaml"):
        load_image_tokenizer(tmp_path)


def test_user_images_grayscale_converted_bad_ones_refused(registry, tmp_path):
    gray = np.linspace(0, 255, 80 * 100).reshape(80, 100).astype(np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    (tmp_path / "questions.txt").write_text("What is this?\n\nIs it dark?\n")
    ctx = _ctx(registry, "it-t", data=str(tmp_path))
    samples = ctx.instance.make_samples(2, 0, None)
    assert samples[0].image.shape == (3, 64, 64)
    assert torch.allclose(samples[0].image[0], samples[0].image[1])  # gray in all three channels
    (tmp_path / "broken.jpg").write_text("this is text, not a JPEG")
    with pytest.raises(GenaccelError, match="broken.jpg.*not a readable image"):
        ctx.instance.make_samples(2, 0, None)
    (tmp_path / "broken.jpg").unlink()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "speck.png")
    with pytest.raises(GenaccelError, match="4×4 pixels"):
        ctx.instance.make_samples(2, 0, None)


def test_bad_prompts_and_options(registry, tmp_path):
    inst = _ctx(registry, "t-i").instance
    with pytest.raises(GenaccelError, match="prompt is empty"):
        inst.prompt_sample("   ", None, {})
    with pytest.raises(GenaccelError, match="makes 256 image tokens per image; --max-new-tokens 300 is more"):
        inst.make_samples(1, 0, max_new_tokens=300)
    (sample,) = inst.make_samples(1, 0, max_new_tokens=10, seq_len=7)  # a quick partial image, a fixed text length
    assert sample.max_new_tokens == 10 and sample.input_lengths == {"text": 9, "image": 0}  # bos + 7 + boi
    with pytest.raises(GenaccelError, match="--image-tokenizr.*did you mean '--image-tokenizer'"):
        _ctx(registry, "t-i", options={"image_tokenizr": "x"})
    with pytest.raises(GenaccelError, match="needs an image: add --image PATH"):
        _ctx(registry, "i-t").instance.prompt_sample("Describe it.", None, {})


def test_generate_writes_a_png_and_captions_an_image(tmp_path, capsys):
    assert main(["generate", "chameleon/t-i", "--preset", "tiny", "--prompt", "A red bus in the rain.",
                 "--out", str(tmp_path / "gen")]) == 0
    out = capsys.readouterr().out
    path = out.split("wrote ")[1].strip()
    assert path.endswith(".png") and Image.open(path).size == (64, 64)
    Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(tmp_path / "photo.jpg")
    assert main(["generate", "chameleon/i-t", "--preset", "tiny", "--prompt", "Describe this image.",
                 "--image", str(tmp_path / "photo.jpg"), "--max-new-tokens", "5", "--out", str(tmp_path / "cap")]) == 0
    assert capsys.readouterr().out.startswith("Describe this image.")
    assert main(["run", "chameleon/i-t", "--preset", "tiny", "--samples", "1", "--image-tokenizr", "x"]) == 2
    assert "did you mean '--image-tokenizer'" in capsys.readouterr().err


def test_ablate_t_i_reports_image_decode(tmp_path, capsys):
    assert main(["ablate", "chameleon/t-i", "--preset", "tiny", "--samples", "1", "--steps", "sdpa,static-kv",
                 "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [c["label"] for c in doc["cases"]] == ["baseline", "sdpa", "sdpa+static-kv"]  # no hf-generate for images
    assert all(c["status"] == "ok" for c in doc["cases"])
    assert all(list((tmp_path / "outputs").glob(f"0{i}-*/images/*.png")) for i in (1, 2, 3))


def test_checkpoints_saved_by_transformers_load_and_decode_alike(registry, tmp_path):
    from genaccel_chameleon.workload import vq_config

    ctx = _ctx(registry, "i-t", decoder="greedy")
    inst = ctx.instance
    folder = tmp_path / "chameleon-tiny"
    inst.module.save_pretrained(folder)
    inst.tokenizer.save_pretrained(folder)
    loaded = prepared(registry, RunConfig(workload="chameleon/i-t", checkpoint=str(folder), decoder="greedy"))
    samples = inst.make_samples(2, 0, max_new_tokens=6)
    ctx.max_seq_len = loaded.max_seq_len = 512
    want = ctx.decoder.run(ctx, samples).outputs
    got = loaded.decoder.run(loaded, samples).outputs
    eos = inst.eos_token_id  # a checkpoint's samples end at EOS; random weights rarely produce it
    assert [g for g in got] == [w[: w.index(eos) + 1] if eos in w else w for w in want]
    with pytest.raises(GenaccelError, match="t-i on a checkpoint needs the VQGAN decoder.*--image-tokenizer"):
        prepared(registry, RunConfig(workload="chameleon/t-i", checkpoint=str(folder)))
    save_release_format(ImageTokenizer(vq_config("tiny")), tmp_path / "tokenizer")
    t_i = prepared(registry, RunConfig(workload="chameleon/t-i", checkpoint=str(folder), max_new_tokens=8,
                                      options={"image_tokenizer": str(tmp_path / "tokenizer")}))
    batch = make_batches(t_i)[0]
    assert t_i.decoder.run(t_i, batch).records[0]["image_size"] == [64, 64]
    (folder / "config.json").write_text("{not json")
    with pytest.raises(GenaccelError, match="config.json.*not valid JSON"):
        prepared(registry, RunConfig(workload="chameleon/i-t", checkpoint=str(folder)))


def test_layerskip_on_captioning_keeps_greedy_tokens(registry):
    def outputs(stack):
        ctx = _ctx(registry, "it-t", decoder="greedy", optimizations=stack, samples=2, batch_size=2,
                   options={"exit_layer": 1, "draft_len": 3} if "layerskip" in stack else {})
        return ctx.decoder.run(ctx, make_batches(ctx)[0]).outputs

    assert outputs(("sdpa", "static-kv", "layerskip")) == outputs(("sdpa", "static-kv"))


def test_int4_weight_only_captions_on_the_compiled_cpu_path(registry):
    ctx = _ctx(registry, "i-t", decoder="greedy", optimizations=("sdpa", "static-kv", "compile", "int4-weight-only"),
               samples=1, batch_size=1, max_new_tokens=5, options={"int4_group_size": 32})
    note = ctx.notes["int4-weight-only"]
    mods = dict(ctx.instance.module.named_modules())
    assert note["layers"] and "left" not in note  # tiny: every in_features a multiple of 32
    assert all(type(mods[n]).__name__ == "Int4Linear" and mods[n].weight.dtype == torch.uint8 for n in note["layers"])
    assert 1 <= len(ctx.decoder.run(ctx, make_batches(ctx)[0]).outputs[0]) <= 5  # it generates


def test_bf16_kv_stores_the_cache_in_bf16_and_reports_the_impact(registry):
    acc = check_bf16_kv(registry, RunConfig(workload="chameleon/i-t", preset="tiny", samples=1, max_new_tokens=6))
    assert acc["teacher_forced_top1_agreement"] >= 0.8 and 0 <= acc["mean_kl"] < 1e-2
    # i-t samples (top-p): its tokens are not compared with the greedy reference's, the scores are
    assert acc["token_agreement"] is None and acc["exact_match_rate"] is None and "top-p" in acc["token_comparison"]
    assert acc["samples"][0]["first_difference"] is None
    greedy = check_bf16_kv(registry, RunConfig(workload="chameleon/i-t", preset="tiny", samples=1, max_new_tokens=6,
                                               decoder="greedy"))
    assert greedy["token_agreement"] is not None and "token_comparison" not in greedy
