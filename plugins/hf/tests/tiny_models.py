"""Tiny random models of every supported architecture for hf/t-t's tests, built with transformers'
own config classes and saved with ``save_pretrained``, with a tokenizer trained here; sliding windows
of 8 positions (the test prompts are longer) and strong soft-caps, so that every difference between
architectures shows in the tokens."""

from __future__ import annotations

BASE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=320, max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0,
            initializer_range=0.3)
LLAMA3_ROPE = dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=32)
#: name -> (transformers config class, its fields beyond BASE)
ARCHS = {
    "llama": ("LlamaConfig", {}),
    "llama3": ("LlamaConfig", dict(tie_word_embeddings=True, rope_parameters=LLAMA3_ROPE)),
    "mistral": ("MistralConfig", dict(sliding_window=8)),
    "qwen2": ("Qwen2Config", dict(num_hidden_layers=4, use_sliding_window=True, sliding_window=8, max_window_layers=2)),
    "qwen3": ("Qwen3Config", dict(head_dim=16)),
    "gemma": ("GemmaConfig", dict(head_dim=16)),
    "gemma2": ("Gemma2Config", dict(num_hidden_layers=4, head_dim=16, sliding_window=8, query_pre_attn_scalar=16,
                                    attn_logit_softcapping=1.0, final_logit_softcapping=5.0)),
    "phi3": ("Phi3Config", dict(sliding_window=8)),
}
CORPUS = ["def add(a, b):\n    return a + b\n", "for i in range(10):\n    print(i * i)\n",
          "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"] * 40
PROMPTS = {  # three lengths (a left-padded batch), each longer than the windows
    "a.py": "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "b.py": "import os\n\n\ndef walk(root):\n    for name in os.listdir(root):\n        path = os.path.join(root, name)\n",
    "c.py": "x = 1\ny = 2\nprint(x + y)\n",
}


def tokenizer():
    from genaccel.api import train_bpe_tokenizer

    tok = train_bpe_tokenizer(BASE["vocab_size"], special_tokens=["<unk>", "<s>", "</s>"], name="hf-test", corpus=CORPUS)
    tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token = "<unk>", "<s>", "</s>", "<unk>"
    return tok


def save_tiny(name: str, path):
    """The tiny model of ``ARCHS[name]`` with norms and biases off their neutral values, saved at ``path``."""
    import torch
    import transformers

    config_class, extra = ARCHS[name]
    config = getattr(transformers, config_class)(**{**BASE, **extra})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    tokenizer().save_pretrained(path)
    return path
