"""SeamlessM4T v2: presets of the real architecture, local checkpoints, tokenizer, speech front end.

Tasks ``t-t``, ``s-t``, ``t-s`` and ``s-s`` (text or speech in, text or speech out): the text or
speech encoder runs once per batch (phase ``encoder``), then the text decoder — the only
autoregressive module — decodes with beam search (5 beams, as the reference); speech output then
takes a second decoder pass, the non-autoregressive T2U and the unit vocoder (``speech.py``).
"""

from __future__ import annotations

import math
import random
import wave
from pathlib import Path

import attrs
import numpy as np
import torch
from genaccel.api import (
    BuildOptions,
    CausalLMWorkload,
    GenaccelError,
    LengthDistribution,
    Seq2SeqLM,
    conv1d_channels_last,
    init_random_weights,
    load_hf_checkpoint,
    read_text,
    train_bpe_tokenizer,
    unknown_name,
    weights_description,
    writing,
)
from transformers import SeamlessM4Tv2Config, SeamlessM4Tv2Model

from . import recordings
from .presets import PRESETS
from .speech import SPEECH_PHASES, Vocoder, speak

SAMPLE_RATE = 16_000
LANGS = ("eng", "spa", "fra", "deu", "ita", "por", "cmn", "hin", "arb", "rus")
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]  # ids 0-3 as in SeamlessM4T's tokenizer

# The paper's Table II, Fleurs en→es: speech input 179-1464 frames (mean ~493; 50 frames a second),
# text input 12-80 tokens (mean ~30).
SPEECH_FRAMES = LengthDistribution(min=179, max=1464, mean=493)
TEXT_TOKENS = LengthDistribution(min=12, max=80, mean=30)
MAX_EXTRA, MAX_CAP = 200, 1024  # decode at most source length + 200 tokens, never more than 1024

SENTENCES = [
    "The weather in the mountains changes quickly, so hikers should always carry a warm jacket.",
    "Scientists discovered a new species of frog in the rain forest last year.",
    "The museum opens at nine in the morning and closes at six in the evening.",
    "She learned to play the piano when she was seven years old.",
    "Public transport in the city is cheap, fast and usually on time.",
    "The football match was postponed because of heavy rain.",
    "Many people visit the old town to see its narrow streets and colorful houses.",
    "The government announced new rules for recycling plastic bottles.",
    "He cooked dinner for his family and then washed all the dishes.",
    "The library lends books, films and music for free to everyone in the town.",
    "A strong earthquake shook the coast early on Tuesday, but nobody was hurt.",
    "Children in the village walk two kilometers to reach their school every day.",
]


@attrs.frozen(kw_only=True)
class SeamlessSample:
    """A source (text tokens or speech features) and the decoder's prompt (start token, target language)."""

    id: str
    input_ids: tuple[int, ...] = attrs.field(converter=tuple)  # decoder prompt
    max_new_tokens: int = attrs.field(validator=attrs.validators.ge(1))
    source_ids: tuple[int, ...] | None = None
    speech: torch.Tensor | None = attrs.field(default=None, eq=False, repr=False)  # (frames, 160) features

    @property
    def input_lengths(self) -> dict[str, int]:
        if self.speech is not None:
            return {"speech_frames": int(self.speech.shape[0])}
        return {"text": len(self.source_ids)}


def preset_tokenizer(vocab_size: int):
    tok = train_bpe_tokenizer(vocab_size, special_tokens=SPECIAL_TOKENS + [f"__{lang}__" for lang in LANGS],
                              name="seamless", max_bytes=min(4_000_000, vocab_size * 250))
    tok.pad_token, tok.unk_token, tok.bos_token, tok.eos_token = SPECIAL_TOKENS
    return tok


def preset_config(name: str) -> SeamlessM4Tv2Config:
    return SeamlessM4Tv2Config(**PRESETS[name])


# --- speech --------------------------------------------------------------------------------------


def read_wav(path: Path) -> np.ndarray:
    """A mono 16 kHz PCM WAV as float32 in [-1, 1], or a clear error."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise GenaccelError(f"{str(path)!r} is not a readable PCM WAV file: {e}") from None
    if rate != SAMPLE_RATE:
        raise GenaccelError(f"{str(path)!r} is sampled at {rate} Hz; SeamlessM4T needs {SAMPLE_RATE} Hz: resample it "
                            f"first (e.g. ffmpeg -i in.wav -ar {SAMPLE_RATE} -ac 1 out.wav)")
    if width not in (2, 4):
        raise GenaccelError(f"{str(path)!r} has {8 * width}-bit samples; give 16- or 32-bit PCM")
    if len(raw) % (width * channels):
        raise GenaccelError(f"{str(path)!r} is truncated: its data ends mid-frame ({len(raw)} bytes, frames of "
                            f"{width * channels}); export the recording again")
    audio = np.frombuffer(raw, dtype=np.int16 if width == 2 else np.int32).astype(np.float32)
    audio = audio.reshape(-1, channels).mean(axis=1) / (32768.0 if width == 2 else 2147483648.0)
    if audio.size < SAMPLE_RATE // 10:
        raise GenaccelError(f"{str(path)!r} holds {audio.size / SAMPLE_RATE:.3f} s of audio; give at least 0.1 s of speech")
    if float(np.abs(audio).max()) < 1e-4:
        raise GenaccelError(f"{str(path)!r} is silent; give a recording of speech")
    return audio


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def synthetic_speech(seconds: float, rng: random.Random) -> np.ndarray:
    """A voiced, syllable-paced signal of the given length (pitch contour, harmonics, formant-like
    noise): a stand-in with speech's length and spectral envelope for when no recordings are given."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pitch = 120 + 30 * np.sin(2 * math.pi * 0.3 * t + rng.random() * 6)
    phase = 2 * math.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.5 * (1 + np.sin(2 * math.pi * 4.0 * t + rng.random() * 6)) ** 2
    noise = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(n) * 0.05
    return (0.1 * voice * syllables + noise * syllables).astype(np.float32)


def features(audio: np.ndarray) -> torch.Tensor:
    """80-bin log-mel filterbank at 100 Hz, normalized per bin, stacked in pairs: (frames, 160) at 50 Hz —
    transformers' SeamlessM4T feature extractor, the model's own front end."""
    from transformers.models.seamless_m4t.feature_extraction_seamless_m4t import SeamlessM4TFeatureExtractor

    out = SeamlessM4TFeatureExtractor()([audio], sampling_rate=SAMPLE_RATE, return_tensors="pt")
    return out["input_features"][0]


# --- the workload --------------------------------------------------------------------------------


class SeamlessWorkload(CausalLMWorkload):
    def __init__(self, task: str, hf_model, tokenizer, *, options: BuildOptions, random_weights: bool):
        self.task = task
        self.speech_in, self.speech_out = task.startswith("s-"), task.endswith("-s")
        self.media_phases = ("encoder", SPEECH_PHASES if self.speech_out else None)
        self.vocoder = Vocoder(hf_model.vocoder) if self.speech_out else None
        super().__init__(Seq2SeqLM(hf_model, hf_model.text_decoder, hf_model.lm_head), hf_model, tokenizer,
                         options=options, random_weights=random_weights)
        cfg = hf_model.config
        self.eos_token_id, self.pad_token_id = cfg.eos_token_id, cfg.pad_token_id
        self.decoder_start = cfg.decoder_start_token_id
        langs = getattr(hf_model.generation_config, "text_decoder_lang_to_code_id", None) or {}
        if not langs:
            raise GenaccelError("the model's generation config has no text_decoder_lang_to_code_id (language map)")
        self.langs = langs
        self.src_lang = self._lang(options.options.get("src_lang", "eng"), "--src-lang")
        self.tgt_lang = self._lang(options.options.get("tgt_lang", "spa"), "--tgt-lang")

    def _lang(self, code: str, flag: str) -> str:
        code = code.strip("_")
        if code not in self.langs:
            raise unknown_name(f"language code ({flag})", code, self.langs)
        return code

    def describe(self) -> dict:
        cfg = self.module.config
        return {
            "task": self.task, "preset": self.options.preset,
            "checkpoint": str(self.options.checkpoint) if self.options.checkpoint else None,
            **weights_description(self.module, self.random_weights),
            "parameters": sum(p.numel() for p in self.module.parameters()),
            "decoder_layers": cfg.decoder_layers, "encoder_layers": cfg.encoder_layers,
            "speech_encoder_layers": cfg.speech_encoder_layers, "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang,
            "inputs": recordings.input_source(self.speech_in, self.options.data),
        }

    def set_channels_last(self) -> str:
        n = conv1d_channels_last(self.vocoder.generator)
        return f"{n} vocoder convolutions run channels-last (NWC: oneDNN's layout on CPU)"

    def set_cuda_graph(self) -> str:
        return super().set_cuda_graph() + "; cross-attention keys and values in fixed buffers (encoder padded to buckets)"

    # --- inputs ------------------------------------------------------------------------------
    def _source_text(self, text: str, length: int | None = None) -> list[int]:
        if not text.strip():
            raise GenaccelError("the source text is empty")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if length is not None:
            ids = (ids * (length // max(len(ids), 1) + 1))[:length]
        return [self.langs[self.src_lang], *ids, self.eos_token_id]

    def _prompt(self) -> list[int]:
        return [self.decoder_start, self.langs[self.tgt_lang]]

    def _budget(self, source_len: int, max_new_tokens: int | None) -> int:
        return max_new_tokens or min(source_len + MAX_EXTRA, MAX_CAP)

    def make_samples(self, n: int, seed: int, max_new_tokens: int | None, seq_len: int | None = None) -> list:
        """Fleurs-like inputs (Table II lengths) or the --data files; ``seq_len`` fixes the source length
        (tokens for text, 50 Hz frames for speech)."""
        rng = random.Random(seed)
        data = self.options.data
        samples = []
        if not self.speech_in:
            texts = _user_lines(data) if data else None
            lengths = [seq_len] * n if seq_len else TEXT_TOKENS.sample(n, rng)
            for i in range(n):
                if texts:
                    src = self._source_text(texts[i % len(texts)], seq_len)
                    sid = f"data/{i % len(texts)}"
                else:  # Fleurs-like English sentences, run together to the drawn length
                    text = " ".join(rng.sample(SENTENCES, len(SENTENCES)))
                    src = self._source_text(text, lengths[i] - 2)
                    sid = f"sentences/{i}"
                samples.append(SeamlessSample(id=sid, input_ids=self._prompt(), source_ids=src,
                                              max_new_tokens=self._budget(len(src), max_new_tokens)))
            return samples
        wavs = _user_wavs(data) if data else None
        frames = [seq_len] * n if seq_len else SPEECH_FRAMES.sample(n, rng)
        speaker = recordings.espeak()
        for i in range(n):
            if wavs:
                path = wavs[i % len(wavs)]
                feats, sid = features(read_wav(path)), f"data/{path.stem}"
            elif speaker:  # English sentences spoken by espeak-ng, as long as Table II says
                feats, sid = features(recordings.recording(frames[i] / 50, SENTENCES, rng)), f"espeak/{i}"
            else:
                feats = features(synthetic_speech(frames[i] / 50, rng))
                sid = f"synthetic-speech/{i}"
            enc_len = math.ceil(feats.shape[0] / 8)  # the speech encoder's adaptor subsamples 8×
            samples.append(SeamlessSample(id=sid, input_ids=self._prompt(), speech=feats,
                                          max_new_tokens=self._budget(enc_len, max_new_tokens)))
        return samples

    def prompt_sample(self, prompt: str, max_new_tokens: int | None, options: dict) -> SeamlessSample:
        if self.speech_in:
            raise GenaccelError(f"generate takes text: use seamless/t-t or t-s, or run {self.task} on --data DIR of WAVs")
        src = self._source_text(prompt)
        return SeamlessSample(id="prompt", input_ids=self._prompt(), source_ids=src,
                              max_new_tokens=self._budget(len(src), max_new_tokens))

    # --- the encoder (a phase of every sample's latency) -------------------------------------
    @torch.no_grad()
    def encode_inputs(self, batch: list[SeamlessSample]) -> list[SeamlessSample]:
        from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import _compute_new_attention_mask

        hf, dev = self.module, self.options.device
        if not self.speech_in:
            length = max(len(s.source_ids) for s in batch)
            ids = torch.full((len(batch), length), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for r, s in enumerate(batch):  # right-padded, as the tokenizer pads
                ids[r, : len(s.source_ids)] = torch.tensor(s.source_ids)
                mask[r, : len(s.source_ids)] = 1
            ids, mask = ids.to(dev), mask.to(dev)
            hidden = hf.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            length = max(s.speech.shape[0] for s in batch)
            feats = torch.zeros((len(batch), length, batch[0].speech.shape[1]))
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for r, s in enumerate(batch):
                feats[r, : s.speech.shape[0]] = s.speech
                mask[r, : s.speech.shape[0]] = 1
            feats, mask = feats.to(dev, self.model.dtype), mask.to(dev)
            hidden = hf.speech_encoder(input_features=feats, attention_mask=mask).last_hidden_state
            lengths = hf._compute_sub_sample_lengths_from_attention_mask(mask).to(hidden.device)
            mask = _compute_new_attention_mask(hidden_states=hidden, seq_lens=lengths)
        self.model.set_encoder(hidden, mask)
        self.encoder_states = (hidden, mask)  # unpadded, for the second decoder pass of speech output
        return batch

    def decode_outputs(self, batch, outputs):
        return speak(self, batch, outputs)

    def save_outputs(self, batch, audio, out_dir) -> list[dict]:
        extras = []
        for sample, samples_of_audio in zip(batch, audio):
            extra = {"audio_s": len(samples_of_audio) / SAMPLE_RATE}
            if out_dir:
                folder = Path(out_dir) / "audio"
                path = folder / (sample.id.replace("/", "-") + ".wav")
                with writing(path):  # a full disk: one line naming the file
                    folder.mkdir(parents=True, exist_ok=True)
                    write_wav(path, samples_of_audio)
                extra["files"] = [str(path)]
            extras.append(extra)
        return extras

    def encode(self, text: str) -> list[int]:
        return self._source_text(text)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([i for i in ids if i not in self.langs.values()], skip_special_tokens=True)


def _user_lines(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise GenaccelError(f"--data {str(folder)!r} is not a directory of *.txt files")
    lines = [ln.strip() for f in sorted(folder.glob("*.txt")) for ln in read_text(f, "text file").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise GenaccelError(f"--data {str(folder)!r} holds no text: one source sentence per line in *.txt files")
    return lines


def _user_wavs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GenaccelError(f"--data {str(folder)!r} is not a directory of *.wav files")
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise GenaccelError(f"--data {str(folder)!r} holds no *.wav files")
    return wavs


def _load_checkpoint(options: BuildOptions):
    hf, tokenizer = load_hf_checkpoint(options, SeamlessM4Tv2Model, model_types=("seamless_m4t_v2",))
    gen_path = options.checkpoint / "generation_config.json"
    if not hasattr(hf.generation_config, "text_decoder_lang_to_code_id") and gen_path.exists():
        import json

        saved = json.loads(gen_path.read_text())  # maps transformers set aside with a derived config
        for key in ("text_decoder_lang_to_code_id", "t2u_lang_code_to_id", "vocoder_lang_code_to_id", "id_to_text",
                    "char_to_id"):
            if key in saved:
                setattr(hf.generation_config, key, saved[key])
    return hf, tokenizer


def _language_maps(gen, tokenizer, config) -> None:
    """What a checkpoint's generation config holds: language codes of the text decoder and the
    vocoder, and the subword → text and character → id maps of the T2U."""
    vocab = tokenizer.get_vocab()
    gen._from_model_config = False  # saved with the model, it is read back as the checkpoint's own
    gen.text_decoder_lang_to_code_id = {lang: vocab[f"__{lang}__"] for lang in LANGS}
    gen.vocoder_lang_code_to_id = {lang: i for i, lang in enumerate(LANGS)}
    gen.t2u_lang_code_to_id = {lang: config.t2u_vocab_size - len(LANGS) + i for i, lang in enumerate(LANGS)}
    texts = {i: tok.replace("\u0120", "\u2581") for tok, i in vocab.items()}  # byte-level space → SentencePiece's
    gen.id_to_text = {str(i): t for i, t in texts.items()}
    chars = sorted({c for t in texts.values() for c in t})[: config.char_vocab_size - 4]
    gen.char_to_id = {c: i + 4 for i, c in enumerate(chars)}


def build_for(task: str):
    def build(options: BuildOptions) -> SeamlessWorkload:
        if options.checkpoint is not None:
            hf, tokenizer = _load_checkpoint(options)
            random_weights = False
        else:
            config = preset_config(options.preset_in(PRESETS, f"seamless/{task}"))
            tokenizer = preset_tokenizer(config.vocab_size)
            with torch.device("meta"):
                hf = SeamlessM4Tv2Model(config).to(options.torch_dtype)
            hf = hf.to_empty(device=options.device)
            init_random_weights(hf, seed=options.seed)
            for module in hf.modules():  # buffers are not weights: sinusoidal tables, batch-norm statistics
                if hasattr(module, "make_weights") and hasattr(module, "weights"):
                    module.make_weights(module.weights.shape[0], module.embedding_dim, module.padding_idx)
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.reset_running_stats()
            _language_maps(hf.generation_config, tokenizer, config)
            random_weights = True
        hf.eval()
        hf.set_attn_implementation("eager")  # the paper's baseline; `sdpa` switches it
        return SeamlessWorkload(task, hf, tokenizer, options=options, random_weights=random_weights)

    return build


# each task's build, named by the plugin's registration as an import string
build_s_s = build_for("s-s")
build_s_t = build_for("s-t")
build_t_t = build_for("t-t")
build_t_s = build_for("t-s")


__all__ = ["PRESETS", "SeamlessSample", "SeamlessWorkload", "build_for", "features", "read_wav",
           "synthetic_speech", "write_wav"]
