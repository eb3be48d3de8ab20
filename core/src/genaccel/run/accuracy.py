"""The accuracy impact of a lossy stack (the study's Table IV), measured on the run's own samples.

Before the stack is applied, the unoptimized model decodes every sample greedily (the
reference) and scores it teacher-forced: prompt, then the reference's tokens fed one decode step
at a time through the model's own steps (the reference next-token distributions).  After the run:

- token agreement: the share of positions where the run's tokens equal the reference's (up
  to the shorter of the two), exact matches, and where the first difference falls;
- teacher-forced: the optimized model scores the same prompt + reference output through its own
  optimized steps (a cache in another dtype, decode-only kernels show), in the same batches; the mean
  KL(reference || optimized) of the next-token distributions, the top-1 agreement and the
  change of perplexity of the reference tokens.

Other workloads compare their outputs (PSNR and SSIM of images and videos, agreement of ids); and
where outputs decode to media (a token model's images, Seamless's speech), the media is compared
too: PSNR/SSIM of images, the signal-to-noise ratio of waveforms.
"""

from __future__ import annotations

import math

import torch

from ..llm.decoding import generate, greedy_pick, loop_options
from ..models.inputs import TextSample
from ..plugin.roles import MediaCodec, TeacherForcing, TokenModel
from .quality import media_impact


def supported(ctx) -> bool:
    """Token models that score a sequence teacher-forced (other workloads compare outputs only)."""
    return ctx.has(TokenModel) and ctx.has(TeacherForcing)


def reference(ctx) -> dict:
    """The accuracy reference of a prepared run before its stack is applied.  Token models: greedy outputs and scores (``tokens``); other workloads: the outputs of a run
    through the case's decoder (``outputs``: media, or ids); and where outputs decode to media
    (images, speech), that media (``decoded``)."""
    decodes = ctx.has(MediaCodec) and bool(ctx.instance.media_phases[1])
    ref = {}
    if supported(ctx):
        ref["tokens"] = capture(ctx, ctx.batches)
        if not decodes:
            return ref
    outputs, decoded = {}, {}
    with torch.no_grad():
        for batch in ctx.batches:
            res = ctx.decoder.run(ctx, batch)
            outs = list(res.extra["media"]) if "media" in res.extra else res.outputs
            for sample, out in zip(batch, outs):
                outputs.setdefault(sample.id, out)
            decoded.update(decoded_of([batch], [res]))
    if "tokens" not in ref:
        ref["outputs"] = outputs
    if decoded:
        ref["decoded"] = decoded
    return ref


def assess(ctx, reference: dict, results, records: list[dict]) -> dict:
    """The run's impact against ``reference``: for token models the token comparison, for others
    PSNR and SSIM of their images and videos or the agreement of their outputs; and where outputs
    decode to media, that media's difference too (``decoded``)."""
    if "tokens" in reference:
        out = impact(ctx, reference["tokens"], records)
    else:
        media = media_of(ctx.batches, results)
        out = media_impact(reference["outputs"], media) if media else output_impact(reference["outputs"], records)
    if out and reference.get("decoded"):
        out["decoded"] = media_impact(reference["decoded"], decoded_of(ctx.batches, results))
    if out and ctx.config.dtype != "float32":
        out["reference"] += f" in float32 (this run: {ctx.config.dtype})"
    return out


def media_of(batches, results) -> dict:
    """The media (images (H, W, C) or videos (F, H, W, C)) of a run's batches, keyed by sample id."""
    return {sample.id: m for batch, res in zip(batches, results) if "media" in res.extra
            for sample, m in zip(batch, res.extra["media"])}


def decoded_of(batches, results) -> dict:
    """The media a token model's outputs decoded to (``extra["decoded"]``: images, waveforms), by sample id."""
    return {sample.id: m for batch, res in zip(batches, results) if res.extra.get("decoded") is not None
            for sample, m in zip(batch, res.extra["decoded"]) if m is not None}


def output_impact(reference: dict, records: list[dict]) -> dict:
    """Position-wise agreement and set overlap of the run's outputs (ranked items, classes) with the reference."""
    per_sample = {}
    for rec in records:
        want = reference.get(rec["id"])
        if want is None or rec["id"] in per_sample:
            continue
        out = rec["output_ids"]
        n = max(len(want), 1)
        per_sample[rec["id"]] = {"id": rec["id"], "agreement": sum(a == b for a, b in zip(out, want)) / n,
                                 "overlap": len(set(out) & set(want)) / max(len(set(want)), 1), "exact": out == want}
    if not per_sample:
        return {}
    rows = list(per_sample.values())
    return {
        "reference": "outputs of the unoptimized model on the same samples",
        "token_agreement": sum(r["agreement"] for r in rows) / len(rows),
        "set_overlap": sum(r["overlap"] for r in rows) / len(rows),
        "exact_match_rate": sum(r["exact"] for r in rows) / len(rows),
        "samples": rows,
    }


def scored(pick, steps: list):
    """``pick``, recording the log-probabilities of each step's logits in ``steps`` (one (B, V) a step)."""

    def record(logits: torch.Tensor) -> torch.Tensor:
        steps.append(torch.log_softmax(logits.float(), dim=-1).cpu())
        return pick(logits)

    return record


def forced_logprobs(ctx, samples: list[dict]) -> list[torch.Tensor]:
    """Log-probabilities (len(output), V) the model gives each of ``samples``' ``output`` tokens after its
    ``prompt``, teacher-forced through the model's own decode loop as one batch: prefill, then one step
    per token fed the given token.  The scores come from the steps a run decodes with (its cache and
    its dtype, compiled kernels, decode-only input rounding), not from a separate full forward."""
    n = max(max(len(s["output"]) for s in samples), 1)
    prompts = [TextSample(id=str(i), input_ids=s["prompt"], max_new_tokens=n) for i, s in enumerate(samples)]
    forced = torch.tensor([s["output"] + [0] * (n - len(s["output"])) for s in samples], device=ctx.device)
    steps = []
    with torch.no_grad():
        generate(ctx.instance.model, prompts, scored(lambda logits: forced[:, len(steps) - 1], steps),
                 **{**loop_options(ctx), "eos_id": None})
    scores = torch.stack(steps, dim=1)
    return [scores[i, : len(s["output"])] for i, s in enumerate(samples)]


def capture(ctx, batches) -> dict:
    """Reference greedy outputs and the log-probabilities of their steps, keyed by sample id, from the model
    as built (the greedy decode feeds each step its own token: the reference's teacher forcing); each
    keeps the ids of its batch (``batch``), which the optimized model is scored in again."""
    inst = ctx.instance
    encode = ctx.has(MediaCodec) and inst.media_phases[0]  # inputs to tokens, as the decoders do
    ref = {}
    for batch in batches:
        if encode:
            batch = inst.encode_inputs(batch)
        steps = []
        res = generate(inst.model, batch, scored(greedy_pick, steps), **loop_options(ctx))
        scores = torch.stack(steps, dim=1)
        ids = tuple(sample.id for sample in batch)
        for row, (sample, out) in enumerate(zip(batch, res.outputs)):
            ref.setdefault(sample.id, {"prompt": list(sample.input_ids), "output": out,
                                       "logprobs": scores[row, : len(out)], "batch": ids})
    return ref


def impact(ctx, reference: dict, records: list[dict]) -> dict:
    """Compare the run's outputs and the optimized model's scores with the reference.  A sampling decoder's
    tokens are not compared with the greedy ones (agreement and exact matches are None): the scores are."""
    sampled = ctx.decoder_spec is not None and ctx.decoder_spec.samples
    per_sample, kls, top1, ref_nll, opt_nll = [], [], [], [], []
    scored = {}  # sample id -> the optimized model's log-probabilities
    done = set()
    for rec in records:
        ref = reference.get(rec["id"])
        if ref is None or rec["id"] in done:
            continue
        done.add(rec["id"])
        out, want = rec["output_ids"], ref["output"]
        n = min(len(out), len(want))
        same = sum(a == b for a, b in zip(out[:n], want[:n]))
        first = next((i for i in range(n) if out[i] != want[i]), None)
        if rec["id"] not in scored:  # the reference's batch, scored as it was
            batch = [i for i in ref["batch"] if i in reference]
            scored.update(zip(batch, forced_logprobs(ctx, [reference[i] for i in batch])))
        # renormalized in float64: two distributions, whose KL is at least 0 (near-equal ones' float32
        # log-probabilities gave either sign)
        lp_ref, lp_opt = (torch.log_softmax(lp.double(), -1) for lp in (ref["logprobs"], scored[rec["id"]]))
        kl = (lp_ref.exp() * (lp_ref - lp_opt)).sum(-1)  # per position
        tokens = torch.tensor(want, dtype=torch.long)
        kls += kl.tolist()
        top1 += (lp_ref.argmax(-1) == lp_opt.argmax(-1)).tolist()
        ref_nll += (-lp_ref.gather(-1, tokens[:, None]).squeeze(-1)).tolist()
        opt_nll += (-lp_opt.gather(-1, tokens[:, None]).squeeze(-1)).tolist()
        compared = {"token_agreement": same / n if n else None, "exact": out == want, "first_difference": first}
        per_sample.append({"id": rec["id"], **(dict.fromkeys(compared) if sampled else compared),
                           "mean_kl": float(kl.mean()) if len(kl) else None})
    if not per_sample:
        return {}
    agreements = [s["token_agreement"] for s in per_sample if s["token_agreement"] is not None]
    result = {
        "reference": "greedy decoding of the unoptimized model on the same samples",
        "token_agreement": sum(agreements) / len(agreements) if agreements else None,
        "exact_match_rate": None if sampled else sum(s["exact"] for s in per_sample) / len(per_sample),
        "mean_kl": sum(kls) / len(kls),
        "teacher_forced_top1_agreement": sum(top1) / len(top1),
        "reference_perplexity": math.exp(sum(ref_nll) / len(ref_nll)),
        "perplexity": math.exp(sum(opt_nll) / len(opt_nll)),
        "samples": per_sample,
    }
    if sampled:
        result["token_comparison"] = (f"not made: the run's decoder ({ctx.decoder_spec.name}) samples its tokens, so the "
                                      "teacher-forced scores measure the impact")
    return result
