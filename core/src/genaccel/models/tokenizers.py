"""Tokenizers built offline: byte-level BPE trained on local text (the Python standard library's
source), cached in genaccel's cache directory, with the framings the released models use."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

from ..errors import first_line
from ..files import cache_dir, warn, write_text


def code_corpus(max_bytes: int = 8_000_000) -> list[str]:
    """Python source text from the standard library, in a fixed order (no download needed)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text)
        if total >= max_bytes:
            break
    return texts


def train_bpe_tokenizer(
    vocab_size: int, *, special_tokens: list[str], name: str = "code", corpus=None, max_bytes: int = 8_000_000
):
    """A byte-level BPE tokenizer trained on local text, cached under ``cache_dir()``.

    Returns a ``transformers.PreTrainedTokenizerFast`` whose first special tokens are
    ``special_tokens`` (ids 0, 1, ...), so it saves and loads like a checkpoint's tokenizer.
    """
    path = cache_dir() / "tokenizers" / f"{name}-bpe-{vocab_size}.json"
    tok = None
    if path.exists():
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # noqa: BLE001 - any failure to parse is a corrupt cache entry
            warn(f"the cached tokenizer {str(path)!r} is corrupt ({first_line(e, 120)}); training it again")
            path.unlink(missing_ok=True)
    if tok is None:
        tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(corpus if corpus is not None else code_corpus(max_bytes), trainer=trainer)
        write_text(path, tok.to_str())
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def clip_style_tokenizer(vocab_size: int, max_length: int = 77, name: str = "clip"):
    """A byte-level BPE tokenizer trained offline (``train_bpe_tokenizer``) with CLIP's framing:
    ``<|startoftext|>`` … ``<|endoftext|>``, padded with ``<|endoftext|>`` to ``max_length``."""
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tok = train_bpe_tokenizer(vocab_size, special_tokens=[bos, eos], name=name)
    tok._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A {eos}", special_tokens=[(bos, 0), (eos, 1)])
    tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token = bos, eos, eos, eos
    tok.model_max_length = max_length
    return tok


def t5_style_tokenizer(vocab_size: int, max_length: int = 77):
    """A byte-level BPE tokenizer trained offline (``train_bpe_tokenizer``) with T5's framing: ``… </s>``,
    padded with ``<pad>`` (id 0) to ``max_length``."""
    from tokenizers.processors import TemplateProcessing

    tok = train_bpe_tokenizer(vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], name="t5")
    tok._tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.pad_token, tok.eos_token, tok.unk_token = "<pad>", "</s>", "<unk>"
    tok.model_max_length = max_length
    return tok
