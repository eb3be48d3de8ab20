"""The run's own weights (preset or checkpoint) as a GGUF file for llama.cpp, written with the ``gguf``
package (``pip install 'genaccel[llamacpp]'``): f32, f16, bf16 or q8_0; q4_0 and q4_K_M are made from
the f32 export by llama.cpp's own quantizer (:func:`quantize`, through llama-cpp-python), with its
choice of types per tensor (q4_K_M keeps some in q6_K, the LM head in q6_K or q8_0).

What llama.cpp's own converter (``convert_hf_to_gguf.py``) does differently per architecture is one
record per ``model_type`` (:data:`GGUF`); tensor names come from gguf's own name map for that
architecture.  A model llama.cpp would run differently is refused with the reason
(:func:`unsupported`): a rope scaling other than Llama 3's, or a sliding window that binds within
the run's length on an architecture whose GGUF has none.  The tokenizer is written as a byte-level
BPE ("gpt2") vocab with its merges; prompts reach llama.cpp as token ids.  Files are cached by a
key of the caller's choosing (:func:`cached_export`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attrs
import numpy as np
import torch
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from ..files import cache_dir

#: the types written here (the llama-cpp decoder's choices: :data:`genaccel.plugin.specs.GGUF_PRECISION`)
FTYPES = ("f32", "f16", "bf16", "q8_0")
#: the types llama.cpp's quantizer makes from the f32 export, by llama-cpp-python's file-type constant
QUANTIZED = {"q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


@attrs.frozen(kw_only=True)
class GGUFArch:
    """``name``: llama.cpp's architecture; ``permute_qk``: Q and K rows go from HF's rotate-half layout
    to GGML's interleaved pairs (llama.cpp's LLAMA rope); ``norm_shift``: added to norm weights
    (Gemma's norms scale by ``1 + w``, llama.cpp's by the weight); ``window``: the GGUF carries the
    sliding window (llama.cpp applies it), else a window that binds cannot be exported; ``softcaps``:
    the attention and final logit soft-caps are written; ``output``: the LM head is written (Gemma's
    llama.cpp reads the tied embedding)."""

    name: str
    permute_qk: bool = False
    norm_shift: float = 0.0
    window: bool = False
    softcaps: bool = False
    output: bool = True


#: The architectures llama.cpp's converter takes, by ``model_type``.
GGUF = {
    "llama": GGUFArch(name="llama", permute_qk=True),
    "mistral": GGUFArch(name="llama", permute_qk=True),
    "qwen2": GGUFArch(name="qwen2"),
    "qwen3": GGUFArch(name="qwen3"),
    "gemma": GGUFArch(name="gemma", norm_shift=1.0, output=False),
    "gemma2": GGUFArch(name="gemma2", norm_shift=1.0, window=True, softcaps=True, output=False),
    "phi3": GGUFArch(name="phi3", window=True),
}


def _rope(cfg) -> dict:
    return dict(getattr(cfg, "rope_parameters", None) or {})


def unsupported(cfg, max_seq_len: int) -> str | None:
    """Why llama.cpp would not run this model as transformers does within ``max_seq_len`` positions
    (None: it would)."""
    spec = GGUF.get(cfg.model_type)
    if spec is None:
        return f"llama.cpp's converter takes {', '.join(sorted(GGUF))}, not model_type {cfg.model_type!r}"
    rope = _rope(cfg).get("rope_type", "default")
    if rope not in ("default", "llama3"):
        return f"rope type {rope!r} is not exported (default and llama3 are)"
    layer_types = list(getattr(cfg, "layer_types", None) or ())
    window = getattr(cfg, "sliding_window", None)
    binds = window is not None and window < max_seq_len and (not layer_types or "sliding_attention" in layer_types)
    if binds and not spec.window:
        return (f"llama.cpp's {spec.name} architecture has no sliding window, and this run's {max_seq_len} positions "
                f"pass the model's window of {window}")
    return None


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half Q/K rows to GGML's interleaved pairs (llama.cpp's convert_hf_to_gguf)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _vocab(tokenizer, vocab_size: int) -> tuple[list[str], list[int], list[str]]:
    import gguf  # an optional dependency (the llamacpp and test extras): imported when exporting

    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))]
    for i in range(len(tokens), vocab_size):  # rows the model has beyond the tokenizer's
        tokens.append(f"[PAD{i}]")
        types.append(gguf.TokenType.UNUSED)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"].get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return tokens[:vocab_size], [int(t) for t in types[:vocab_size]], merges


def export(model, tokenizer, path: str | Path, ftype: str = "f32", *, name: str = "genaccel") -> Path:
    """Write ``model`` (a transformers ``*ForCausalLM`` of an architecture in :data:`GGUF`) and
    ``tokenizer`` as GGUF at ``path``."""
    import gguf

    if ftype not in FTYPES:
        raise ValueError(f"GGUF type {ftype!r}: choose one of {', '.join(FTYPES)}")
    spec = GGUF[model.config.model_type]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    w = gguf.GGUFWriter(str(tmp), spec.name)
    _header(w, spec, model.config, ftype, name)
    _tokenizer(w, model.config, tokenizer)
    _tensors(w, spec, model, ftype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def _header(w, spec: GGUFArch, cfg, ftype: str, name: str) -> None:
    """The architecture's keys."""
    import gguf

    heads, kv_heads = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[ftype]
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_rope_dimension_count(int(head_dim * _rope(cfg).get("partial_rotary_factor", 1.0)))
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(_rope(cfg).get("rope_theta", getattr(cfg, "rope_theta", None) or 1e4))
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(file_type)
    if spec.window:  # 0: none (llama.cpp's phi3 reads it so)
        w.add_sliding_window(getattr(cfg, "sliding_window", None) or 0)
    if spec.name == "phi3":
        w.add_rope_scaling_orig_ctx_len(getattr(cfg, "original_max_position_embeddings", None)
                                        or cfg.max_position_embeddings)
    if spec.softcaps:
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)


def _tokenizer(w, cfg, tokenizer) -> None:
    tokens, types, merges = _vocab(tokenizer, cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for key, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("pad", w.add_pad_token_id)):
        tid = getattr(tokenizer, f"{key}_token_id", None)
        tid = tid if tid is not None else getattr(cfg, f"{key}_token_id", None)
        if isinstance(tid, int):
            fn(tid)
    w.add_add_bos_token(False)  # prompts are given as the run's own token ids


def _state(spec: GGUFArch, model) -> dict:
    """The weights to write by their HF names: the LM head from the tied embedding where llama.cpp wants
    one, Llama 3's rope frequency divisors as ``rope_freqs.weight``."""
    cfg = model.config
    state = model.state_dict()
    if not spec.output:
        state.pop("lm_head.weight", None)
    elif "lm_head.weight" not in state or cfg.tie_word_embeddings:
        state = {**state, "lm_head.weight": state["model.embed_tokens.weight"]}
    if _rope(cfg).get("rope_type") == "llama3":  # llama.cpp divides each default frequency by its factor
        scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
        dim = 2 * scaled.shape[0]
        default = 1.0 / _rope(cfg)["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        state["rope_freqs.weight"] = default / scaled
    return {k: v for k, v in state.items() if "rotary_emb" not in k}


def _tensors(w, spec: GGUFArch, model, ftype: str) -> None:
    """Every weight under its GGUF name (gguf's map for the architecture), Q and K rows permuted and
    norms shifted where llama.cpp wants, in the file's type (vectors in f32)."""
    import gguf

    cfg = model.config
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == spec.name)
    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    heads, kv_heads = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    for hf_name, tensor in _state(spec, model).items():
        gg_name = "rope_freqs.weight" if hf_name == "rope_freqs.weight" else names.get_name(
            hf_name, try_suffixes=(".weight", ".bias"))
        if gg_name is None:
            raise ValueError(f"GGUF export: no {spec.name} tensor name for {hf_name!r}")
        data = tensor.detach().to("cpu", torch.float32).numpy()
        if spec.permute_qk and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            data = _permute(data, heads if "q_proj" in hf_name else kv_heads)
        if spec.norm_shift and hf_name.endswith("norm.weight"):
            data = data + spec.norm_shift
        if data.ndim == 1 or ftype == "f32":  # norms stay f32 in every type, as llama.cpp's converter does
            w.add_tensor(gg_name, np.ascontiguousarray(data, dtype=np.float32))
        elif ftype == "f16":
            w.add_tensor(gg_name, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.BF16 if ftype == "bf16" else gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(gg_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def quantize(source: str | Path, path: str | Path, ftype: str, *, threads: int = 0) -> Path:
    """llama.cpp's quantizer (``llama_model_quantize`` with its default parameters) from the GGUF at
    ``source`` to ``ftype`` (a key of :data:`QUANTIZED`) at ``path``."""
    import ctypes

    import llama_cpp

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZED[ftype])
    params.nthread = threads
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp's quantizer returned {code} making {ftype} from {source}")
    tmp.replace(path)
    return path


def cached_export(model, tokenizer, ftype: str, key: str) -> Path:
    """The GGUF of ``model`` in ``$GENACCEL_CACHE/gguf/``, written once per ``key`` (say, the preset or
    checkpoint and seed), architecture and type; a :data:`QUANTIZED` type is quantized from the (cached)
    f32 export."""
    if ftype not in FTYPES and ftype not in QUANTIZED:
        raise ValueError(f"GGUF type {ftype!r}: choose one of {', '.join([*FTYPES, *QUANTIZED])}")
    ident = json.dumps({"key": key, "config": model.config.to_dict(), "ftype": ftype}, sort_keys=True, default=str)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    path = cache_dir() / "gguf" / f"{model.config.model_type}-{digest}-{ftype}.gguf"
    if path.exists():
        return path
    if ftype in QUANTIZED:
        return quantize(cached_export(model, tokenizer, "f32", key), path, ftype, threads=torch.get_num_threads())
    return export(model, tokenizer, path, ftype)
