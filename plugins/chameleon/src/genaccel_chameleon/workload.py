"""Chameleon: presets of the real architecture, local checkpoints, tokenizers and inputs.

Three tasks share one model: ``i-t`` (an image and an instruction → a caption, 30 steps),
``it-t`` (an image and a question → an answer, 10 steps) and ``t-i`` (a prompt → exactly one
image of ``grid²`` tokens, 1024 for the release's VQGAN, decoded to a PNG).
"""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import torch
from genaccel.api import (
    BuildOptions,
    CausalLMWorkload,
    GenaccelError,
    HFCausalLM,
    code_corpus,
    init_random_weights,
    load_causal_lm,
    random_causal_lm,
    save_images,
    shard_causal_lm,
    train_bpe_tokenizer,
    weights_description,
)
from transformers import ChameleonConfig, ChameleonForConditionalGeneration, ChameleonVQVAEConfig

from . import inputs
from .presets import PRESETS, RELEASE_VQGAN, TINY_VQGAN
from .vqgan import ImageTokenizer, grid_size, load_image_tokenizer, to_uint8

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3 as in Chameleon's tokenizer
BOI, EOI, IMAGE = "<racm3:break>", "<eoss>", "<image>"  # begin / end of image, image placeholder
TASKS = {  # decode steps of the text tasks (the study's fixed lengths)
    "i-t": 30,
    "it-t": 10,
    "t-i": None,  # one image: grid² tokens
}


def image_token_name(code: int) -> str:
    """The vocabulary name of codebook entry ``code``: digits spelled A-J between IMGIMG and Z."""
    return "IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z"


def vq_config(preset: str) -> ChameleonVQVAEConfig:
    return ChameleonVQVAEConfig(**(TINY_VQGAN if preset == "tiny" else RELEASE_VQGAN))


def preset_tokenizer(vocab_size: int, n_codes: int):
    """BPE trained offline, with Chameleon's special tokens and one token per image code."""
    specials = SPECIAL_TOKENS + [image_token_name(i) for i in range(n_codes)] + [EOI, BOI, IMAGE]
    tok = train_bpe_tokenizer(vocab_size, special_tokens=specials, name=f"chameleon{n_codes}",
                              max_bytes=min(4_000_000, vocab_size * 250))
    tok.bos_token, tok.pad_token, tok.eos_token, tok.unk_token = SPECIAL_TOKENS
    return tok


def preset_config(name: str, vocabulary_map: dict) -> ChameleonConfig:
    return ChameleonConfig(
        **PRESETS[name], max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=0, pad_token_id=1,
        eos_token_id=2, tie_word_embeddings=False, vq_config=vq_config(name).to_dict(), vocabulary_map=vocabulary_map,
    )


@attrs.frozen(kw_only=True)
class ChameleonSample:
    """A prompt whose image positions hold the ``<image>`` placeholder until the image is encoded."""

    id: str
    input_ids: tuple[int, ...] = attrs.field(converter=tuple)
    max_new_tokens: int = attrs.field(validator=attrs.validators.ge(1))
    image: torch.Tensor | None = attrs.field(default=None, eq=False, repr=False)  # (3, R, R) in [-1, 1]
    image_tokens: int = 0

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"text": len(self.input_ids) - self.image_tokens, "image": self.image_tokens}


class ChameleonWorkload(CausalLMWorkload):
    top_k = None  # t-i samples with temperature and top-p, as the reference (--top-k switches to top-k)

    def __init__(self, task: str, hf_model, tokenizer, image_tokenizer: ImageTokenizer | None, *,
                 options: BuildOptions, random_weights: bool):
        super().__init__(HFCausalLM(hf_model), hf_model, tokenizer, options=options, random_weights=random_weights)
        self.task = task
        self.image_tokenizer = image_tokenizer
        cfg = hf_model.config
        vocab = hf_model.model.vocabulary_mapping
        self.bos_token_id = cfg.bos_token_id if cfg.bos_token_id is not None else 0
        self.eos_token_id = cfg.eos_token_id
        self.pad_token_id = cfg.pad_token_id if cfg.pad_token_id is not None else 1
        names = vocab.vocab_map
        missing = [t for t in (BOI, EOI, IMAGE) if t not in names]
        if missing or not vocab.image_tokens:
            raise GenaccelError(f"the vocabulary map lacks {', '.join(missing) or 'image tokens (IMGIMG…Z)'}; "
                                "is this a Chameleon checkpoint?")
        self.boi, self.eoi, self.image_placeholder = names[BOI], names[EOI], names[IMAGE]
        dev = options.device
        codes = torch.tensor([vocab.bpe2img[t] for t in vocab.image_tokens])
        bpe = torch.tensor(vocab.image_tokens)
        self.code_to_bpe = torch.zeros(int(codes.max()) + 1, dtype=torch.long).index_put_((codes,), bpe).to(dev)
        self.bpe_to_code = torch.full((cfg.vocab_size,), -1, dtype=torch.long).index_put_((bpe,), codes).to(dev)
        is_image = torch.zeros(cfg.vocab_size, dtype=torch.bool)
        is_image[bpe] = True
        # text tasks never emit image tokens (as transformers' Chameleon); images emit nothing else
        self.model.set_allowed_tokens(is_image if task == "t-i" else ~is_image)
        self.guidance_scale = float(options.options.get("guidance_scale", 3.0))
        self._images: dict = {}

    @property
    def media_phases(self):
        return (None, "image decode") if self.task == "t-i" else ("image encode", None)

    @property
    def image_grid(self) -> int:
        return grid_size(self.image_tokenizer.config if self.image_tokenizer is not None else self.module.config.vq_config)

    @property
    def image_tokens(self) -> int:
        return self.image_grid ** 2

    @property
    def image_size(self) -> int:
        return self.module.config.vq_config.resolution

    def describe(self) -> dict:
        cfg = self.module.config
        return {
            "task": self.task,
            "preset": self.options.preset,
            "checkpoint": str(self.options.checkpoint) if self.options.checkpoint else None,
            **weights_description(self.module, self.random_weights),
            "parameters": sum(p.numel() for p in self.module.parameters()),
            "inputs": (f"images and prompts of --data {self.options.data}" if self.options.data else
                       "COCO-style prompts" if self.task == "t-i" else
                       "scikit-image's sample photographs with COCO-style instructions and questions"),
            "image_decoder_parameters": (sum(p.numel() for p in self.image_tokenizer.decoder.parameters())
                                         if self.image_tokenizer is not None and self.image_tokenizer.decoder else None),
            "layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "heads": cfg.num_attention_heads,
            "kv_heads": cfg.num_key_value_heads,
            "vocab_size": cfg.vocab_size,
            "image_tokens": self.image_tokens,
            "image_size": self.image_size,
            "guidance_scale": self.guidance_scale if self.task == "t-i" else None,
        }

    # --- optimizations that reach past the language model ----------------------------------
    def set_compile(self, mode: str) -> str:
        note = super().set_compile(mode)
        if self.image_tokenizer is None:
            return note
        if self.task != "t-i":  # the image encoder, 60-85% of a captioning's latency on CPU
            if self.image_tokenizer.post_quant_conv.weight.dtype != torch.float32:
                return note + "; VQGAN encoder left eager (in reduced precision a new layout rounds differently: other codes)"
            self.image_tokenizer.compile_encoder(mode)
            cpu = torch.device(self.options.device).type == "cpu"
            return note + "; VQGAN encoder compiled" + (" with channels-last convolutions (oneDNN)" if cpu else "")
        if self.image_tokenizer.decoder is None:
            return note
        # Inductor's CPU convolutions measured slower: 8.1 s vs 6.5 s per 512² image
        if torch.device(self.options.device).type != "cuda":
            return note + "; VQGAN decoder left eager (compiled, it is slower on CPU)"
        self.image_tokenizer.compile_decoder(mode)
        return note + "; VQGAN decoder compiled (static shapes)"

    # --- prompts -----------------------------------------------------------------------------
    def _text(self, text: str, length: int | None = None) -> list[int]:
        """The prompt's tokens; ``length`` (``--seq-len``) repeats or cuts them to exactly that many."""
        if not text.strip():
            raise GenaccelError("the prompt is empty; give some text")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ids if length is None else (ids * (length // len(ids) + 1))[:length]

    def _image_span(self) -> list[int]:
        return [self.boi, *[self.image_placeholder] * self.image_tokens, self.eoi]

    def _sample(self, sid: str, text: str, image: torch.Tensor | None, max_new_tokens: int | None,
                seq_len: int | None = None) -> ChameleonSample:
        if self.task == "t-i":
            if max_new_tokens is not None and max_new_tokens > self.image_tokens:
                raise GenaccelError(f"t-i makes {self.image_tokens} image tokens per image; --max-new-tokens "
                                    f"{max_new_tokens} is more (fewer draw part of the image, for quick checks)")
            ids = [self.bos_token_id, *self._text(text, seq_len), self.boi]
            return ChameleonSample(id=sid, input_ids=ids, max_new_tokens=max_new_tokens or self.image_tokens)
        ids = [self.bos_token_id, *self._image_span(), *self._text(text, seq_len)]
        return ChameleonSample(id=sid, input_ids=ids, max_new_tokens=max_new_tokens or TASKS[self.task],
                               image=image, image_tokens=self.image_tokens)

    def unconditional_prompt(self, sample: ChameleonSample) -> list[int]:
        """The guidance stream of t-i: the prompt with its text dropped."""
        return [self.bos_token_id, self.boi]

    def _load_image(self, path: Path) -> torch.Tensor:
        key = str(path)
        if key not in self._images:
            self._images[key] = inputs.preprocess(inputs.read_image(path), self.image_size)
        return self._images[key]

    def make_samples(self, n: int, seed: int, max_new_tokens: int | None, seq_len: int | None = None) -> list:
        """Images and prompts; ``seq_len`` fixes the length of the text part (the image is always grid² tokens)."""
        rng = random.Random(seed)
        if self.task == "t-i":
            prompts = inputs.user_prompts(self.options.data) if self.options.data else inputs.IMAGE_PROMPTS
            order = list(range(len(prompts)))
            rng.shuffle(order)  # every prompt once before any repeats
            picks = [order[i % len(order)] for i in range(n)]
            return [self._sample(f"prompt/{i}", prompts[i], None, max_new_tokens, seq_len) for i in picks]
        if self.options.data:
            images, texts = inputs.user_images(self.options.data), inputs.user_prompts(self.options.data, required=False)
            pixels = [(p.stem, self._load_image(p)) for p in images]
        else:
            if "sample_photographs" not in self._images:  # prepared once per instance
                self._images["sample_photographs"] = [(name, inputs.preprocess(image, self.image_size))
                                                      for name, image in inputs.sample_images()]
            pixels, texts = self._images["sample_photographs"], None
        texts = texts or (inputs.CAPTION_INSTRUCTIONS if self.task == "i-t" else [q for _, q in inputs.QUESTIONS])
        samples = []
        for i in range(n):
            if self.task == "it-t" and not self.options.data:  # each sample photograph has its own questions
                name, question = inputs.QUESTIONS[rng.randrange(len(inputs.QUESTIONS))]
                image = dict(pixels)[name]
                text = question
            else:
                name, image = pixels[rng.randrange(len(pixels))]
                text = texts[rng.randrange(len(texts))]
            samples.append(self._sample(f"{name}/{i}", text, image, max_new_tokens, seq_len))
        return samples

    def prompt_sample(self, prompt: str, max_new_tokens: int | None, options: dict) -> ChameleonSample:
        """One sample from ``genaccel generate --prompt`` (and ``--image PATH`` for i-t and it-t)."""
        image = None
        if self.task != "t-i":
            path = options.get("image")
            if not path:
                raise GenaccelError(f"chameleon/{self.task} needs an image: add --image PATH")
            image = self._load_image(Path(path))
        return self._sample("prompt", prompt, image, max_new_tokens)

    # --- images in and out (the decoders time these as phases) -------------------------------
    def encode_inputs(self, batch: list[ChameleonSample]) -> list[ChameleonSample]:
        """VQGAN-encode the batch's images and put their tokens where the placeholders are."""
        if self.image_tokenizer is None:
            raise GenaccelError("no image tokenizer: load one with --image-tokenizer PATH")
        pixels = torch.stack([s.image for s in batch]).to(self.options.device, self.model.dtype)
        tokens = self.code_to_bpe[self.image_tokenizer.encode(pixels)].tolist()
        out = []
        for sample, toks in zip(batch, tokens):
            ids = list(sample.input_ids)
            at = ids.index(self.image_placeholder)
            ids[at : at + len(toks)] = toks
            out.append(attrs.evolve(sample, input_ids=ids))
        return out

    def decode_outputs(self, batch, outputs: list[list[int]]) -> list[torch.Tensor]:
        """Image tokens → pixels.  A partial image (the run's short warm-up, or fewer tokens asked for with
        --max-new-tokens) is completed with code 0."""
        if self.image_tokenizer is None or self.image_tokenizer.decoder is None:
            raise GenaccelError("t-i needs the VQGAN decoder's weights: give --image-tokenizer PATH (the release's "
                                "tokenizer/ folder with vqgan.yaml and vqgan.ckpt)")
        n = self.image_tokens
        tokens = torch.tensor([[t for t in out if t != self.eoi][:n] for out in outputs], device=self.options.device)
        codes = self.bpe_to_code[tokens]
        if bool((codes < 0).any()):
            raise GenaccelError("a generated image holds a token outside the image vocabulary")
        codes = torch.nn.functional.pad(codes, (0, n - codes.shape[1]))
        return list(to_uint8(self.image_tokenizer.decode(codes)))

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        return save_images(batch, images, out_dir)

    def training_texts(self, max_bytes: int = 6_000_000) -> list[str]:
        return code_corpus(max_bytes)


# --- building ------------------------------------------------------------------------------------


def build_for(task: str):
    def build(options: BuildOptions) -> ChameleonWorkload:
        dev, dtype = options.device, options.torch_dtype
        vq_path = options.options.get("image_tokenizer")
        if options.checkpoint is not None:
            hf, tokenizer = load_causal_lm(options, ChameleonForConditionalGeneration, model_types=("chameleon",),
                                           shard=shard_causal_lm)
            random_weights = False
            image_tokenizer = None
            if vq_path:  # the release's VQGAN: its encoder replaces the checkpoint's copy
                image_tokenizer = load_image_tokenizer(vq_path, device=dev, dtype=dtype)
            elif task != "t-i":
                image_tokenizer = ImageTokenizer(hf.config.vq_config, encoder_from=hf.model.vqmodel, decoder=False)
            else:
                raise GenaccelError("chameleon/t-i on a checkpoint needs the VQGAN decoder, which Hugging Face "
                                    "folders lack: add --image-tokenizer PATH (the release's tokenizer/ folder "
                                    "with vqgan.yaml and vqgan.ckpt)")
        else:
            name = options.preset_in(PRESETS, f"chameleon/{task}")
            vq = vq_config(name)
            tokenizer = preset_tokenizer(PRESETS[name]["vocab_size"], vq.num_embeddings)
            config = preset_config(name, tokenizer.get_vocab())
            hf = random_causal_lm(ChameleonForConditionalGeneration, config, options, shard=shard_causal_lm)
            if vq_path:
                image_tokenizer = load_image_tokenizer(vq_path, device=dev, dtype=dtype)
            else:
                image_tokenizer = ImageTokenizer(hf.config.vq_config, encoder_from=hf.model.vqmodel,
                                                 decoder=task == "t-i")
                if task == "t-i":
                    image_tokenizer.decoder.to(device=dev, dtype=dtype)
                    init_random_weights(image_tokenizer.decoder, seed=options.seed + 1)
            random_weights = True
        if image_tokenizer is not None:
            image_tokenizer.eval()
            vq = image_tokenizer.config
            if vq.num_embeddings > len(hf.model.vocabulary_mapping.image_tokens):
                raise GenaccelError(f"the image tokenizer has {vq.num_embeddings} codes but the model's vocabulary "
                                    f"only {len(hf.model.vocabulary_mapping.image_tokens)} image tokens")
        hf.eval()
        hf.set_attn_implementation("eager")  # the paper's baseline; `sdpa` switches it
        return ChameleonWorkload(task, hf, tokenizer, image_tokenizer, options=options, random_weights=random_weights)

    return build


# each task's build, named by the plugin's registration as an import string
build_i_t = build_for("i-t")
build_it_t = build_for("it-t")
build_t_i = build_for("t-i")


__all__ = ["PRESETS", "TASKS", "ChameleonSample", "ChameleonWorkload", "build_for",
           "image_token_name", "preset_config", "preset_tokenizer", "vq_config"]
