"""llama.cpp as a reference engine (decoder ``llama-cpp``; ``pip install 'genaccel[llamacpp]'``):
the run's own weights exported to GGUF (:mod:`genaccel.models.gguf`, cached), run by
llama-cpp-python greedily on the same prompts with the same thread count as torch.  A model whose
GGUF llama.cpp would run differently (:func:`genaccel.models.gguf.unsupported`) is a recorded skip.

Records the same per-sample figures as genaccel's own loop (latency, TTFT, TPOT, per-step times).
MBU counts the bytes llama.cpp reads: the GGUF file's tensors but the token embedding (f32, f16,
bf16, q8_0 blocks, or the q4_0 and q4_K_M files' mix of types that llama.cpp's quantizer chose) and
its f16 KV cache.

Before a GGUF file is first run in a process, a child process loads it and evaluates a prompt of up to
``n_batch`` tokens and one more token (:func:`trial`): some llama.cpp builds crash on some CPUs (a
build with AMX kernels, run where the process may not use AMX tiles, dies of SIGSEGV on its first
prompt), and a crash would end the whole run.  A file whose trial fails is a recorded skip naming the
signal or the last line the child wrote.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time

import torch

from ..errors import GenaccelError
from ..models.gguf import cached_export, unsupported
from ..plugin.batch import BatchResult
from ..plugin.specs import NotApplied

N_BATCH = 512  # llama.cpp's prompt batch

#: the trial run: load the file (argv 1) with the run's context, threads and prompt batch (argv 2-4), evaluate a
#: prompt of up to a batch of tokens of ids below the vocabulary's size (argv 5), then one more token
TRIAL = """
import sys
import llama_cpp
path, (n_ctx, threads, n_batch, vocab) = sys.argv[1], map(int, sys.argv[2:6])
llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=n_batch,
                      verbose=False)
llm.eval([1 + i % (vocab - 1) for i in range(min(n_batch, n_ctx - 2))])
llm.eval([1])
"""


@functools.cache
def trial(path: str, n_ctx: int, threads: int, vocab: int, code: str = TRIAL) -> str | None:
    """Why llama.cpp cannot run the GGUF file at ``path`` here, from a trial run of ``code`` in a child
    process (the signal it died of or its non-zero exit, and the child's last line of output; the caller
    names llama.cpp); None when it ran.
    Once per file and setting in a process."""
    done = subprocess.run([sys.executable, "-c", code, path, *map(str, (n_ctx, threads, N_BATCH, vocab))],
                          capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    last = f": {lines[-1].strip()}" if lines else ""
    if done.returncode < 0:
        try:
            how = f"died of {signal.Signals(-done.returncode).name}"
        except ValueError:
            how = f"died of signal {-done.returncode}"
    else:
        how = f"exited with status {done.returncode}"
    return (f"{how} in a trial run of {path} in a child process{last} (this llama.cpp build cannot "
            "run the file on this CPU; rebuilding llama-cpp-python for it, or without the kernels that crash, may help)")


class LlamaCpp:
    def __init__(self, gguf_type: str = "f32", **options):
        self.gguf_type = gguf_type
        self._llm = None

    def _load(self, ctx):
        if self._llm is not None:
            return self._llm
        inst, cfg = ctx.instance, ctx.config
        reason = unsupported(inst.module.config, ctx.max_seq_len)
        if reason is not None:
            raise NotApplied(f"llama.cpp: {reason}")
        try:
            import llama_cpp
        except ImportError:
            raise GenaccelError("decoder llama-cpp needs llama-cpp-python: pip install 'genaccel[llamacpp]'") from None
        key = f"{cfg.checkpoint or cfg.preset}-seed{cfg.seed}-{cfg.dtype}"
        path = cached_export(inst.module, inst.tokenizer, self.gguf_type, key)
        threads = torch.get_num_threads()
        n_ctx = max(ctx.max_seq_len, 64)
        why = trial(str(path), n_ctx, threads, inst.module.config.vocab_size)
        if why is not None:
            raise NotApplied(f"llama.cpp: {why}")
        self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                    n_batch=N_BATCH, verbose=False)
        ctx.notes["llama-cpp"] = f"llama.cpp on {path.name} ({self.gguf_type}), {threads} threads"
        from gguf import GGUFReader

        self.weight_bytes = sum(int(t.n_bytes) for t in GGUFReader(path).tensors if t.name != "token_embd.weight")
        self.kv_bytes = 2 * inst.kv_bytes_per_token() // inst.module.dtype.itemsize  # llama.cpp's cache is f16
        return self._llm

    def run(self, ctx, batch) -> BatchResult:
        llm = self._load(ctx)
        inst = ctx.instance
        eos = None if inst.random_weights else inst.eos_token_id
        records, outputs, steps, kv = [], [], [], 0
        prefill = decode = 0.0
        for s in batch:
            prompt = [int(t) for t in s.input_ids]
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            tok = int(llm.sample(top_k=1, temp=0.0))
            first = time.perf_counter() - t0
            out = [tok]
            while len(out) < s.max_new_tokens and tok != eos:
                t = time.perf_counter()
                llm.eval([tok])
                tok = int(llm.sample(top_k=1, temp=0.0))
                steps.append(time.perf_counter() - t)
                kv += len(prompt) + len(out)
                out.append(tok)
            latency = time.perf_counter() - t0
            prefill, decode = prefill + first, decode + latency - first
            records.append({"id": s.id, "input_tokens": len(prompt), "output_tokens": len(out), "latency_s": latency,
                            "ttft_s": first, "tpot_s": (latency - first) / (len(out) - 1) if len(out) > 1 else None})
            outputs.append(out)
        return BatchResult(records=records, outputs=outputs, latency_s=prefill + decode, prefill_s=prefill,
                           decode_s=decode, decode_steps=len(steps), kv_tokens_read=kv, step_s=steps,
                           weight_bytes_per_step=self.weight_bytes, kv_bytes_per_token=self.kv_bytes,
                           phases={"prefill": prefill, "decode": decode})
