"""Parti's model pieces: the paper-size parameter counts on the meta device, the encoder-decoder's shapes, its
separate text and image vocabularies and its save/load round trip, incremental decoding against the full forward,
the ViT-VQGAN's shapes and factorized lookup, and the text tokenizer's framing."""

from __future__ import annotations

import pytest
import torch
from genaccel_parti.model import (
    PartiForConditionalGeneration,
    build_transformer,
    codes_to_ids,
    count_parameters,
    decoder_inputs,
    ids_to_codes,
    image_token_mask,
)
from genaccel_parti.presets import IMAGE_BOS, IMAGE_OFFSET, PRESETS, TEXT_EOS, TEXT_PAD
from genaccel_parti.tokenizer import encode_prompts, text_tokenizer, unconditional_ids
from genaccel_parti.vitvqgan import build_vitvqgan, stack_parameters
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

RELEASED = ("350m", "750m", "3b", "20b")
TABLE_1 = {"350m": (12, 12, 1024, 4096, 16), "750m": (12, 36, 1024, 4096, 16), "3b": (12, 36, 2048, 8192, 32),
           "20b": (16, 64, 4096, 16384, 64)}


@pytest.fixture(scope="module")
def tiny():
    return build_transformer(PRESETS["tiny"], seed=0)


def text_batch(rows: int = 2, length: int = 7, vocab: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Random text ids ending in ``</s>``, the second row right-padded by two."""
    ids = torch.randint(3, vocab, (rows, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    ids[:, -1] = TEXT_EOS
    ids[1, -3], ids[1, -2:], mask[1, -2:] = TEXT_EOS, TEXT_PAD, 0
    return ids, mask


def random_codes(rows: int, preset, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, preset.vqgan.codebook_size, (rows, preset.image_tokens), generator=g)


@pytest.mark.parametrize("name", RELEASED)
def test_released_sizes_match_the_paper(name):
    preset = PRESETS[name]
    model = build_transformer(preset)
    cfg = model.config
    assert next(model.parameters()).device.type == "meta"
    assert (cfg.encoder_layers, cfg.decoder_layers, cfg.d_model, cfg.decoder_ffn_dim, cfg.decoder_attention_heads) \
        == TABLE_1[name]
    assert (cfg.vocab_size, cfg.image_vocab_size, preset.transformer.max_text_len, preset.image_tokens) \
        == (16_000, 8192 + IMAGE_OFFSET, 128, 1024)
    count = count_parameters(model)
    assert abs(count.layers / preset.paper_params - 1) < 0.03, count  # Table 1 counts the Transformer layers
    assert count.total > count.layers


def test_twenty_b_is_the_studys_80_layers_of_4096():
    cfg = build_transformer(PRESETS["20b"]).config
    assert cfg.encoder_layers + cfg.decoder_layers == 80 and cfg.d_model == 4096


def test_small_is_a_cpu_bench_size():
    count = count_parameters(build_transformer(PRESETS["small"], meta=True))
    assert 40e6 < count.total < 60e6 and PRESETS["small"].image_tokens == 1024


def test_separate_text_and_image_vocabularies(tiny):
    preset, inner = PRESETS["tiny"], tiny.model
    assert inner.encoder.embed_tokens.weight is inner.shared.weight  # the text embedding, tied
    assert inner.decoder.embed_tokens.weight.shape == (preset.image_vocab_size, 64)
    assert inner.shared.weight.shape == (preset.transformer.text_vocab_size, 64)
    assert tiny.lm_head.weight.shape == (preset.image_vocab_size, 64)
    assert tiny.lm_head.weight.data_ptr() != inner.decoder.embed_tokens.weight.data_ptr()
    allowed = image_token_mask(tiny.config)
    assert not allowed[:IMAGE_OFFSET].any() and allowed[IMAGE_OFFSET:].all()
    codes = random_codes(2, preset)
    assert torch.equal(ids_to_codes(codes_to_ids(codes)), codes)
    assert torch.equal(decoder_inputs(codes)[:, 0], torch.full((2,), IMAGE_BOS))


@torch.no_grad()
def test_encoder_decoder_forward_shapes(tiny):
    preset = PRESETS["tiny"]
    ids, mask = text_batch()
    out = tiny(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_inputs(random_codes(2, preset)))
    assert out.encoder_last_hidden_state.shape == (2, ids.shape[1], 64)
    assert out.logits.shape == (2, preset.image_tokens, preset.image_vocab_size)
    assert torch.isfinite(out.logits).all()


@torch.no_grad()
def test_incremental_decoding_equals_the_full_forward(tiny):
    """The decoder's own vocabulary and positions under a KV cache, one token per step, as a decode loop runs it."""
    ids, mask = text_batch()
    inputs = decoder_inputs(random_codes(2, PRESETS["tiny"]))[:, :12]
    encoder = tiny.get_encoder()(input_ids=ids, attention_mask=mask)
    full = tiny(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=inputs).logits
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    for step in range(inputs.shape[1]):
        out = tiny(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=inputs[:, step:step + 1],
                   cache=cache, use_cache=True)
        cache = out.cache
        torch.testing.assert_close(out.logits[:, 0], full[:, step], rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_save_pretrained_round_trip_gives_identical_logits(tiny, tmp_path):
    ids, mask = text_batch()
    dec = decoder_inputs(random_codes(2, PRESETS["tiny"]))
    tiny.save_pretrained(tmp_path)
    loaded = PartiForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.image_vocab_size == tiny.config.image_vocab_size
    assert loaded.model.encoder.embed_tokens.weight is loaded.model.shared.weight
    for name, tensor in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    before = tiny(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    after = loaded(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    assert torch.equal(before, after)


def test_released_vitvqgan_on_meta_maps_1024_tokens_to_256x256():
    shape = PRESETS["20b"].vqgan
    vq = build_vitvqgan(shape, meta=True)
    images = vq.decode(torch.zeros(2, 1024, dtype=torch.long, device="meta"))
    assert images.shape == (2, 256, 256, 3)
    assert vq.encode(images).shape == (2, 1024)
    params = stack_parameters(vq)
    assert 20e6 < params["encoder"] < 35e6  # ViT-VQGAN-Small, "about 30M"
    assert abs(params["decoder"] / 600e6 - 1) < 0.1  # the finetuned decoder, "about 600M"
    assert params["codebook"] == 8192 * 32


@pytest.mark.parametrize("name", ["tiny", "small"])
@torch.no_grad()
def test_vitvqgan_round_trip_shapes(name):
    shape = PRESETS[name].vqgan  # small: the released grid and codebook, narrow ViTs
    vq = build_vitvqgan(shape, seed=0)
    tokens = random_codes(2, PRESETS[name])
    images = vq.decode(tokens)
    assert images.shape == (2, shape.image_size, shape.image_size, 3)
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
    back = vq.encode(images)
    assert back.shape == tokens.shape and back.dtype == torch.long
    assert 0 <= int(back.min()) and int(back.max()) < shape.codebook_size
    assert torch.equal(vq.quantize(vq.lookup(tokens)), tokens)  # each l2-normalized code is its own nearest code
    with pytest.raises(ValueError, match="tokens"):
        vq.decode(tokens[:, :-1])


def test_text_tokenizer_framing():
    shape = PRESETS["tiny"].transformer
    tok = text_tokenizer(shape)
    assert len(tok) == shape.text_vocab_size
    assert unconditional_ids(tok) == [TEXT_EOS]
    batch = encode_prompts(tok, ["A red fox in the snow.", "a cat " * 100])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == (2, shape.max_text_len)
    assert ids[1, -1] == TEXT_EOS and mask[1].all()  # truncated, still ending in </s>
    short = int(mask[0].sum())
    assert ids[0, short - 1] == TEXT_EOS and (ids[0, short:] == TEXT_PAD).all()
