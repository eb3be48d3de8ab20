"""The accuracy impact of a lossy stack (the study's Table IV), measured on the run's own samples.

Before the stack is applied, the unoptimized model decodes every sample greedily (the
reference) and scores prompt + reference output in one forward (the reference next-token
distributions).  After the run:

- token agreement: the share of positions where the run's tokens equal the reference's (up
  to the shorter of the two), exact matches, and where the first difference falls;
- teacher-forced: the optimized model scores the same prompt + reference output; the mean
  KL(reference || optimized) of the next-token distributions, the top-1 agreement and the
  change of perplexity of the reference tokens.

Other workloads compare their outputs (PSNR and SSIM of images and videos, agreement of ids); and
where outputs decode to media (a token model's images, Seamless's speech), the media is compared
too: PSNR/SSIM of images, the signal-to-noise ratio of waveforms.
"""

from __future__ import annotations

import math

import attrs
import torch

from .decoding import generate, greedy_pick, loop_options
from .roles import MediaCodec, TeacherForcing, TokenModel


def supported(ctx) -> bool:
    """Token models that score a sequence teacher-forced (other workloads compare outputs only)."""
    return ctx.has(TokenModel) and ctx.has(TeacherForcing)


def reference(registry, config, ctx, *, strict: bool = True) -> dict:
    """The reference of a lossy case (``config``, prepared as ``ctx``), taken before its stack is
    applied: the run's own unoptimized model, or for a reduced-precision run its float32 twin (built
    with the same seed, so the run's weights are the twin's, rounded), released again after."""
    from .runner import prepare, release_memory

    if config.dtype == "float32":
        return _reference_of(ctx)
    rng = torch.get_rng_state()
    twin = prepare(registry, attrs.evolve(config, dtype="float32"), strict=strict, apply=False)
    twin.batches, twin.max_seq_len = ctx.batches, ctx.max_seq_len
    ref = _reference_of(twin)
    del twin
    release_memory()
    torch.set_rng_state(rng)  # the run draws as it would have without the twin
    return ref


def _reference_of(ctx) -> dict:
    """Token models: greedy outputs and scores (``tokens``); other workloads: the outputs of a run
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


def media_impact(reference: dict, produced: dict) -> dict:
    """Images and videos (values in [0, 1], or uint8): PSNR and SSIM; waveforms (1-D): signal-to-noise ratio."""
    def unit(m):
        m = torch.as_tensor(m)
        return m.float() / 255 if m.dtype == torch.uint8 else m

    reference = {k: unit(m) for k, m in reference.items() if m is not None}
    produced = {k: unit(m) for k, m in produced.items() if m is not None}
    if not reference:
        return {}
    first = next(iter(reference.values()))
    return audio_impact(reference, produced) if first.dim() == 1 else image_impact(reference, produced)


def audio_impact(reference: dict, produced: dict) -> dict:
    """Signal-to-noise ratio in dB of every waveform against the unoptimized model's on the same
    sample (10·log10 of the reference's energy over the difference's, over their common length);
    None where they are equal, and whether the lengths agree."""
    rows = []
    for sid, want in reference.items():
        got = produced.get(sid)
        if got is None or want is None:
            continue
        want, got = torch.as_tensor(want).double().flatten(), torch.as_tensor(got).double().flatten()
        n = min(len(want), len(got))
        noise = float(((got[:n] - want[:n]) ** 2).sum())
        signal = float((want[:n] ** 2).sum())
        snr = None if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
        rows.append({"id": sid, "snr_db": snr, "same_length": len(want) == len(got), "samples": n,
                     "exact": noise == 0 and len(want) == len(got)})
    if not rows:
        return {}
    finite = [r["snr_db"] for r in rows if r["snr_db"] is not None]
    return {  # SNR None: equal waveforms; the mean over the samples that differ
        "reference": "waveforms of the unoptimized model on the same samples",
        "snr_db": sum(finite) / len(finite) if finite else None,
        "min_snr_db": min(finite) if finite else None,
        "same_length_rate": sum(r["same_length"] for r in rows) / len(rows),
        "exact_match_rate": sum(r["exact"] for r in rows) / len(rows),
        "samples": rows,
    }


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images with values in [0, 1] (inf when equal)."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) of two (H, W, C) images in [0, 1]: an 11x11 Gaussian
    window of sigma 1.5, K1 = 0.01, K2 = 0.03, per channel over the valid positions, averaged."""
    import torch.nn.functional as F

    x = a.double().permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    y = b.double().permute(2, 0, 1)[:, None]
    size = min(window, x.shape[-1], x.shape[-2])
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]
    c1, c2 = 0.01**2, 0.03**2

    def blur(t):
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def image_impact(reference: dict, produced: dict) -> dict:
    """PSNR and SSIM of every output image (every frame of a video) against the unoptimized model's
    on the same sample; per sample the means over its frames, and the means over samples."""
    rows = []
    for sid, want in reference.items():
        got = produced.get(sid)
        if got is None or not torch.is_tensor(want):
            continue
        frames = [(got, want)] if want.dim() == 3 else list(zip(got, want))
        ps = [psnr(g, w) for g, w in frames]
        ss = [ssim(g, w) for g, w in frames]
        finite = [p for p in ps if math.isfinite(p)]
        rows.append({"id": sid, "psnr_db": sum(finite) / len(finite) if finite else None, "ssim": sum(ss) / len(ss),
                     "frames": len(frames), "exact": all(math.isinf(p) for p in ps)})
    if not rows:
        return {}
    finite = [r["psnr_db"] for r in rows if r["psnr_db"] is not None]
    return {  # PSNR None: equal images (infinite PSNR); means over the frames and samples that differ
        "reference": "images (frames) of the unoptimized model on the same samples, seeds and steps",
        "psnr_db": sum(finite) / len(finite) if finite else None,
        "ssim": sum(r["ssim"] for r in rows) / len(rows),
        "exact_match_rate": sum(r["exact"] for r in rows) / len(rows),
        "samples": rows,
    }


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


def _score(inst, ids: list[int], n_out: int, device: str) -> torch.Tensor:
    """Log-probabilities (n_out, V) that the model gives the last ``n_out`` tokens of ``ids``."""
    with torch.no_grad():
        logits = inst.teacher_forced_logits(torch.tensor([ids[:-1]], device=device))[0, -n_out:]
    return torch.log_softmax(logits.float(), dim=-1).cpu()


def capture(ctx, batches) -> dict:
    """Reference greedy outputs and log-probabilities, keyed by sample id, from the model as built."""
    inst = ctx.instance
    encode = ctx.has(MediaCodec) and inst.media_phases[0]  # inputs to tokens, as the decoders do
    ref = {}
    for batch in batches:
        if encode:
            batch = inst.encode_inputs(batch)
        res = generate(inst.model, batch, greedy_pick, **loop_options(ctx))
        for sample, out in zip(batch, res.outputs):
            if sample.id not in ref:
                ref[sample.id] = {"prompt": list(sample.input_ids), "output": out,
                                  "logprobs": _score(inst, list(sample.input_ids) + out, len(out), ctx.device)}
    return ref


def impact(ctx, reference: dict, records: list[dict]) -> dict:
    """Compare the run's outputs and the optimized model's scores with the reference."""
    per_sample, kls, top1, ref_nll, opt_nll = [], [], [], [], []
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
        lp_ref = ref["logprobs"]
        lp_opt = _score(ctx.instance, ref["prompt"] + want, len(want), ctx.device)
        kl = (lp_ref.exp() * (lp_ref - lp_opt)).sum(-1)  # per position
        tokens = torch.tensor(want)
        kls += kl.tolist()
        top1 += (lp_ref.argmax(-1) == lp_opt.argmax(-1)).tolist()
        ref_nll += (-lp_ref.gather(-1, tokens[:, None]).squeeze(-1)).tolist()
        opt_nll += (-lp_opt.gather(-1, tokens[:, None]).squeeze(-1)).tolist()
        per_sample.append({"id": rec["id"], "token_agreement": same / n if n else None, "exact": out == want,
                           "first_difference": first, "mean_kl": float(kl.mean())})
    if not per_sample:
        return {}
    agreements = [s["token_agreement"] for s in per_sample if s["token_agreement"] is not None]
    return {
        "reference": "greedy decoding of the unoptimized model on the same samples",
        "token_agreement": sum(agreements) / len(agreements) if agreements else None,
        "exact_match_rate": sum(s["exact"] for s in per_sample) / len(per_sample),
        "mean_kl": sum(kls) / len(kls),
        "teacher_forced_top1_agreement": sum(top1) / len(top1),
        "reference_perplexity": math.exp(sum(ref_nll) / len(ref_nll)),
        "perplexity": math.exp(sum(opt_nll) / len(opt_nll)),
        "samples": per_sample,
    }
