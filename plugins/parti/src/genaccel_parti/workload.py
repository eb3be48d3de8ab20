"""parti/t-i: a prompt in, exactly grid² image tokens out (1024: a 32x32 grid), decoded by the ViT-VQGAN to a PNG.

The text encoder runs once per batch (phase ``text encoder``), over the prompts and over the empty prompt that
classifier-free guidance's unconditional stream reads; the decoder writes the image tokens on the core's step
protocol for encoder-decoders (``Seq2SeqLM``: static self-attention cache, cross-attention keys and values computed
once at prefill, the compiled decode step), its logits restricted to the image codes; the core's ``cfg`` and
``cfg-sequential`` decoders guide it and draw with top-k; the ViT-VQGAN's detokenizer makes the image (phase
``image decode``).
"""

from __future__ import annotations

import copy

import torch
from genaccel.api import (
    BuildOptions,
    CausalLMWorkload,
    GenaccelError,
    Seq2SeqLM,
    find_attention_sites,
    parameters,
    pick_prompts,
    save_images,
    weights_description,
)
from transformers.modeling_outputs import BaseModelOutput

from .build import PartiParts, build_parti
from .checkpoint import load_checkpoint
from .inputs import PROMPTS, PartiSample
from .model import ids_to_codes, image_token_mask
from .presets import IMAGE_BOS, IMAGE_PAD, PRESETS, TEXT_PAD

#: the top-k of guided sampling where the run gives none (the paper samples with top-k and names no k)
TOP_K = 100


class PartiWorkload(CausalLMWorkload):
    eos_token_id = None  # no end-of-image token: every image is exactly grid² tokens
    pad_token_id = IMAGE_PAD
    eoi = None
    top_k = TOP_K
    media_phases = ("text encoder", "image decode")

    def __init__(self, parts: PartiParts, *, options: BuildOptions, random_weights: bool):
        self.parts, self.transformer, self.vqgan = parts, parts.transformer, parts.vqgan
        model = Seq2SeqLM(self.transformer, self.transformer.model.decoder, self.transformer.lm_head,
                          cross_attention="encoder_attn")
        module = torch.nn.ModuleDict({"transformer": self.transformer, "vitvqgan": self.vqgan})
        super().__init__(model, module, parts.tokenizer, options=options, random_weights=random_weights)
        self.model.set_allowed_tokens(image_token_mask(self.transformer.config))  # never <pad> or <bos>
        self.guidance_scale = float(options.options.get("guidance_scale", parts.preset.guidance_scale))
        self.image_tokens = parts.vqgan.shape.tokens
        self._source = None  # the batch's text ids, mask and encoder states (for transformers' generate)

    def describe(self) -> dict:
        p, cfg = self.parts.preset, self.transformer.config
        return {
            "preset": self.options.preset if self.options.checkpoint is None else None,
            "checkpoint": str(self.options.checkpoint) if self.options.checkpoint else None,
            **weights_description(self.transformer, self.random_weights),
            "parameters": parameters(self.transformer), "vitvqgan_parameters": parameters(self.vqgan),
            "encoder_layers": cfg.encoder_layers, "decoder_layers": cfg.decoder_layers, "d_model": cfg.d_model,
            "mlp": cfg.decoder_ffn_dim, "heads": cfg.decoder_attention_heads, "text_vocab_size": cfg.vocab_size,
            "codebook_size": p.vqgan.codebook_size, "image_tokens": self.image_tokens,
            "image_size": p.vqgan.image_size, "guidance_scale": self.guidance_scale,
            "top_k": self.options.options.get("top_k", self.top_k),
        }

    def set_cuda_graph(self) -> str:
        return super().set_cuda_graph() + "; cross-attention keys and values in fixed buffers (text padded to buckets)"

    # --- AttentionRecord: one period is the whole generation (``period_options`` {}, CausalLMWorkload's) ---------
    def attention_sites(self) -> list:
        """The Transformer's attention: the encoder's self-attention over the text (the prompt's, then under guidance
        the empty prompt's), the decoder's self-attention over the image tokens so far (one key more a step on the
        baseline's growing cache) and its cross-attention to the text; then the ViT-VQGAN detokenizer's attention
        over the token grid, ``spatial`` (the tokenizer's encoder never runs in text-to-image)."""
        return (find_attention_sites(self.transformer, "transformer")
                + find_attention_sites(self.vqgan.decoder, "vitvqgan.decoder", self_kind="spatial"))

    # --- prompts -----------------------------------------------------------------------------
    def _sample(self, sid: str, text: str, max_new_tokens: int | None, seq_len: int | None = None) -> PartiSample:
        if not text.strip():
            raise GenaccelError("the prompt is empty; describe the image to make")
        if max_new_tokens is not None and max_new_tokens > self.image_tokens:
            raise GenaccelError(f"parti/t-i makes {self.image_tokens} image tokens per image; --max-new-tokens "
                                f"{max_new_tokens} is more (fewer draw part of the image, for quick checks)")
        ids = self.tokenizer(text, truncation=True)["input_ids"]  # ends in </s>
        if seq_len is not None:
            limit = self.tokenizer.model_max_length
            if not 2 <= seq_len <= limit:
                raise GenaccelError(f"--seq-len {seq_len}: Parti's encoder reads 2 to {limit} text tokens")
            body = ids[:-1]
            ids = (body * (seq_len // len(body) + 1))[: seq_len - 1] + ids[-1:]
        return PartiSample(id=sid, prompt=text, source_ids=ids, max_new_tokens=max_new_tokens or self.image_tokens)

    def make_samples(self, n: int, seed: int, max_new_tokens: int | None, seq_len: int | None = None) -> list:
        """PartiPrompts-like prompts (or the ``--data`` files'); ``seq_len`` fixes the text's length in tokens."""
        picked = pick_prompts(self.options.data, n, seed, prompts=PROMPTS)
        return [self._sample(f"prompt/{i}", text, max_new_tokens, seq_len) for i, text in enumerate(picked)]

    def prompt_sample(self, text: str, max_new_tokens: int | None = None, options=None) -> PartiSample:
        return self._sample("prompt", text, max_new_tokens)

    def unconditional_prompt(self, sample: PartiSample) -> list[int]:
        """The decoder's prompt of the unconditional stream: ``<bos>`` too; its encoder states (the empty
        prompt's) are what differ, given by :meth:`encode_inputs`."""
        return [IMAGE_BOS]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, truncation=True)["input_ids"]

    def decode(self, ids) -> str:
        return f" [{len(ids)} image tokens]"

    # --- the text encoder and the image detokenizer (phases of every sample's latency) ----------
    @torch.no_grad()
    def encode_inputs(self, batch: list[PartiSample]) -> list[PartiSample]:
        """Encode the prompts (right-padded) and the empty prompt ``</s>``; the decoder reads both."""
        dev = self.options.device
        length = max(len(s.source_ids) for s in batch)
        ids = torch.full((len(batch), length), TEXT_PAD, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, s in enumerate(batch):
            ids[row, : len(s.source_ids)], mask[row, : len(s.source_ids)] = torch.tensor(s.source_ids), 1
        empty = torch.tensor([self.tokenizer("")["input_ids"]], device=dev)
        encoder = self.transformer.get_encoder()
        ids, mask = ids.to(dev), mask.to(dev)
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        u_hidden = encoder(input_ids=empty).last_hidden_state.expand(len(batch), -1, -1)
        self.model.set_encoder(hidden, mask, unconditional=(u_hidden, torch.ones(u_hidden.shape[:2], device=dev)))
        self._source = (ids, mask, hidden)
        return batch

    @torch.no_grad()
    def decode_outputs(self, batch, outputs: list[list[int]]) -> list[torch.Tensor]:
        """Image tokens → (H, W, 3) images in [0, 1].  A partial image (the run's short warm-up, or fewer tokens
        asked for with --max-new-tokens) is completed with code 0."""
        n = self.image_tokens
        codes = ids_to_codes(torch.tensor([row[:n] for row in outputs], device=self.options.device))
        if bool(((codes < 0) | (codes >= self.vqgan.shape.codebook_size)).any()):
            raise GenaccelError("a generated image holds a token outside the image codes")
        codes = torch.nn.functional.pad(codes, (0, n - codes.shape[1]))
        return list(self.vqgan.decode(codes).cpu())

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        return save_images(batch, images, out_dir)

    # --- transformers' own generate on the same weights (the hf-generate reference) -------------
    def hf_generate(self, input_ids, attention_mask, generation_config):
        """Greedy ``generate`` over the batch's encoder states: ``input_ids`` is the decoder's prompt; ``<pad>``
        and ``<bos>`` suppressed, exactly as many tokens as asked (no image ends early)."""
        ids, mask, hidden = self._source
        config = copy.deepcopy(generation_config)
        config.suppress_tokens = [IMAGE_PAD, IMAGE_BOS]
        config.min_new_tokens = config.max_new_tokens
        return self.transformer.generate(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                                         attention_mask=mask, decoder_input_ids=input_ids, generation_config=config)


def build(options: BuildOptions) -> PartiWorkload:
    """A preset (random weights; ``small`` by default) or a ``--checkpoint`` folder; eager attention (the
    study's baseline: ``sdpa`` switches it)."""
    if options.checkpoint is not None:
        parts, random_weights = load_checkpoint(options), False
    else:
        name = options.preset_in(PRESETS, "parti/t-i")
        parts = build_parti(PRESETS[name], seed=options.seed, device=options.device, dtype=options.torch_dtype)
        random_weights = True
    parts.transformer.set_attn_implementation("eager")
    return PartiWorkload(parts, options=options, random_weights=random_weights)
