"""LayerSkip's sweep: plain greedy decoding of a prepared run's batches, then self-speculative decoding
at every (exit layer, draft length) pair, each timed warm and checked for the same tokens."""

from __future__ import annotations

import sys
import time

from ..llm.decoding import generate, greedy_pick, loop_options
from ..llm.speculative import speculate
from .context import make_batches
from .summary import speculative_summary


def default_pairs(n_layers: int, exits=(), lens=()) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The exit layers (default N/8..N/2) and draft lengths (default 2, 3, 4, 6) to try."""
    return (tuple(exits) or tuple(sorted({max(1, n_layers * i // 8) for i in range(1, 5)})),
            tuple(lens) or (2, 3, 4, 6))


def sweep_pairs(ctx, exits, lens) -> dict:
    """Greedy's seconds and tokens, and per pair its seconds, speedup over greedy, acceptance, tokens per
    cycle and whether its tokens equal greedy's (they must: greedy self-speculation is exact)."""
    inst, batches, common = ctx.instance, make_batches(ctx), loop_options(ctx)

    def timed(fn):
        fn(batches[0])  # warm-up (compiles)
        t0 = time.perf_counter()
        results = [fn(b) for b in batches]
        return time.perf_counter() - t0, results

    base_s, base = timed(lambda b: generate(inst.model, b, greedy_pick, **common))
    records = []
    for e in exits:
        for k in lens:
            inst.model.reset_steps()  # each (E, k) compiles its own draft and verify steps
            secs, res = timed(lambda b, e=e, k=k: speculate(inst.model, b, exit_layer=e, draft_len=k, **common))
            stats = speculative_summary([r.extra["speculative"] for r in res])
            records.append({"exit_layer": e, "draft_len": k, "seconds": secs, "speedup": base_s / secs,
                            "acceptance_rate": stats["acceptance_rate"], "tokens_per_cycle": stats["tokens_per_cycle"],
                            "same_tokens": all(r.outputs == q.outputs for r, q in zip(res, base))})
            print(f"  E={e} k={k}: {records[-1]['speedup']:.2f}×", file=sys.stderr, flush=True)
    return {"greedy_s": base_s, "tokens": sum(len(o) for r in base for o in r.outputs), "pairs": records,
            "best": max(records, key=lambda r: r["speedup"])}
