"""The run's own Llama weights (preset or checkpoint) as a GGUF file for llama.cpp, written with
the ``gguf`` package (``pip install 'genaccel-llama[llamacpp]'``): f32, f16, bf16 or q8_0.

Tensor names and the Q/K row permutation follow llama.cpp's own converter (HF's rotate-half rotary
layout becomes GGML's interleaved one); the tokenizer is written as a byte-level BPE ("gpt2") vocab
with its merges.  Files are cached by a key of the caller's choosing (:func:`cached_export`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

FTYPES = ("f32", "f16", "bf16", "q8_0")


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half Q/K rows to GGML's interleaved pairs (llama.cpp's convert_hf_to_gguf)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _names(layers: int) -> dict[str, str]:
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    parts = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(layers):
        for hf, gg in parts.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    return names


def _vocab(tokenizer, vocab_size: int) -> tuple[list[str], list[int], list[str]]:
    import gguf

    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))]
    for i in range(len(tokens), vocab_size):  # rows the model has beyond the tokenizer's
        tokens.append(f"[PAD{i}]")
        types.append(gguf.TokenType.UNUSED)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"].get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return tokens[:vocab_size], [int(t) for t in types[:vocab_size]], merges


def export(model, tokenizer, path: str | Path, ftype: str = "f32", *, name: str = "genaccel-llama") -> Path:
    """Write ``model`` (a transformers ``LlamaForCausalLM``) and ``tokenizer`` as GGUF at ``path``."""
    import gguf

    if ftype not in FTYPES:
        raise ValueError(f"GGUF type {ftype!r}: choose one of {', '.join(FTYPES)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    w = gguf.GGUFWriter(str(tmp), "llama")
    _header(w, model.config, tokenizer, ftype, name)
    _tensors(w, model, ftype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def _header(w, cfg, tokenizer, ftype: str, name: str) -> None:
    """The architecture's and tokenizer's keys."""
    import gguf

    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[ftype]
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_rope_dimension_count(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(getattr(cfg, "rope_theta", None) or (cfg.rope_parameters or {}).get("rope_theta", 1e4))
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(file_type)
    tokens, types, merges = _vocab(tokenizer, cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for key, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("pad", w.add_pad_token_id)):
        tid = getattr(tokenizer, f"{key}_token_id", None)
        tid = tid if tid is not None else getattr(cfg, f"{key}_token_id", None)
        if tid is not None:
            fn(int(tid))
    w.add_add_bos_token(False)  # prompts are given as the run's own token ids


def _tensors(w, model, ftype: str) -> None:
    """Every weight under its GGUF name, Q and K rows permuted, in the file's type (norms in f32)."""
    import gguf

    cfg = model.config
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    state = model.state_dict()
    if "lm_head.weight" not in state or cfg.tie_word_embeddings:
        state = {**state, "lm_head.weight": state["model.embed_tokens.weight"]}
    for hf_name, gg_name in _names(cfg.num_hidden_layers).items():
        data = state[hf_name].detach().to("cpu", torch.float32).numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, kv_heads)
        if data.ndim == 1 or ftype == "f32":  # norms stay f32 in every type, as llama.cpp's converter does
            w.add_tensor(gg_name, np.ascontiguousarray(data, dtype=np.float32))
        elif ftype == "f16":
            w.add_tensor(gg_name, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.BF16 if ftype == "bf16" else gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(gg_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def cached_export(model, tokenizer, ftype: str, key: str) -> Path:
    """The GGUF of ``model`` in ``$GENACCEL_CACHE/gguf/``, written once per ``key`` (say, the preset or
    checkpoint and seed), architecture and type."""
    from genaccel.api import cache_dir

    ident = json.dumps({"key": key, "config": model.config.to_dict(), "ftype": ftype}, sort_keys=True, default=str)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    path = cache_dir() / "gguf" / f"llama-{digest}-{ftype}.gguf"
    return path if path.exists() else export(model, tokenizer, path, ftype)
