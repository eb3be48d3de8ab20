"""The report's "genaccel against llama.cpp" section from a bench's cases: pairs by precision at one
setting, pp and tg as mean ± sd over rounds, the ratio of means, contended rounds left out."""

from genaccel.report.llamacpp import comparison, comparison_markdown, comparison_rows


def _case(decoder, opts, rnd, pp_s, tg, *, gguf=None, dtype="float32", contended=False, mbu=0.5):
    """A measured case: one sample of a 512-token prompt whose first token took ``pp_s`` seconds."""
    return {"label": "x", "status": "ok", "workload": "llama/t-t", "preset": "small", "decoder": decoder,
            "optimizations": opts, "skipped_optimizations": [], "dtype": dtype, "device": "cpu", "batch_size": 1,
            "seq_len": 512, "round": rnd, "config": {"max_new_tokens": 128, "tp": 1, "round": rnd,
                                                     "options": {"gguf_type": gguf} if gguf else {}},
            "samples": [{"input_tokens": 512, "ttft_s": pp_s}],
            "summary": {"decode_tokens_per_s": tg, "mbu": mbu,
                        "contention": {"reasons": ["busy"]} if contended else None}}


STACK = ["sdpa", "static-kv", "compile"]
CASES = [
    _case("llama-cpp", [], 0, 1.0, 20.0, gguf="q4_0"), _case(None, [*STACK, "int4-weight-only"], 0, 2.0, 30.0),
    _case(None, STACK, 0, 0.5, 10.0),  # float32: no llama.cpp f32 beside it, no row
    _case("llama-cpp", [], 1, 0.5, 22.0, gguf="q4_0"), _case(None, [*STACK, "int4-weight-only"], 1, 1.0, 34.0),
    _case("llama-cpp", [], 2, 0.1, 99.0, gguf="q4_0", contended=True),
    _case("llama-cpp", [], 0, 1.0, 10.0, gguf="bf16", dtype="bfloat16"),  # no bfloat16 stack: no row
]


def test_pairs_by_precision_with_spread_over_rounds_and_contended_left_out():
    (row,) = comparison(CASES)
    assert (row["precision"], row["gguf_type"], row["model"], row["prompt_tokens"], row["new_tokens"]) == (
        "int4-weight-only", "q4_0", "small", 512, 128)
    ours, theirs = row["genaccel"], row["llama_cpp"]
    assert ours["stack"] == "sdpa+static-kv+compile+int4-weight-only" and theirs["stack"] == "llama.cpp"
    assert ours["pp_tokens_per_s"]["values"] == [256.0, 512.0] and theirs["pp_tokens_per_s"]["values"] == [512.0, 1024.0]
    assert ours["tg_tokens_per_s"]["mean"] == 32.0 and theirs["tg_tokens_per_s"]["mean"] == 21.0
    assert theirs["invalid"] == 1 and ours["invalid"] == 0
    assert row["ratio"]["pp"] == 0.5 and abs(row["ratio"]["tg"] - 32 / 21) < 1e-12
    cells = comparison_rows([row])[0]
    assert cells[4] == "384.0 ± 181.0" and cells[6] == "0.50" and cells[9] == "1.52" and cells[10] == "50% ± 0%"
    assert cells[-1] == "2/2 (1 INVALID left out)"
    assert comparison_markdown(CASES)[0] == "## genaccel against llama.cpp" and comparison_markdown(CASES[2:3]) == []
