"""Parti's text tokenizer: a byte-level BPE trained offline by genaccel (``train_bpe_tokenizer``: the Python
standard library's source as corpus, cached in genaccel's cache directory), in place of Parti's SentencePiece
model of the same 16,000-token vocabulary size (Sec. 2.2).  It is framed as a SentencePiece/T5 model's output:
``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, each text followed by ``</s>``, at most 128 tokens (truncated),
padded with ``<pad>``.  The unconditional prompt of classifier-free guidance is the empty text, ``</s>`` alone."""

from __future__ import annotations

from genaccel.api import train_bpe_tokenizer
from tokenizers.processors import TemplateProcessing

from .presets import TEXT_EOS, TEXT_SPECIALS, TransformerShape


def text_tokenizer(shape: TransformerShape):
    """A ``transformers.PreTrainedTokenizerFast`` of ``shape.text_vocab_size`` tokens, ``shape.max_text_len`` long."""
    pad, eos, unk = TEXT_SPECIALS
    vocab = shape.text_vocab_size
    tok = train_bpe_tokenizer(vocab, special_tokens=list(TEXT_SPECIALS), name="parti",
                              max_bytes=min(8_000_000, vocab * 500))
    tok._tokenizer.post_processor = TemplateProcessing(single=f"$A {eos}", special_tokens=[(eos, TEXT_EOS)])
    tok.pad_token, tok.eos_token, tok.unk_token = pad, eos, unk
    tok.model_max_length = shape.max_text_len
    tok.padding_side = "right"
    return tok


def encode_prompts(tokenizer, prompts: list[str]) -> dict:
    """Token ids (B, L) and attention mask (B, L) of ``prompts``, right-padded to the longest, truncated to the
    tokenizer's maximum (the last kept token is ``</s>``)."""
    return tokenizer(prompts, padding=True, truncation=True, return_tensors="pt")


def unconditional_ids(tokenizer) -> list[int]:
    """The empty prompt's ids: ``[</s>]``."""
    return tokenizer("")["input_ids"]
