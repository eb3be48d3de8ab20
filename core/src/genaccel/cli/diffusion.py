"""``genaccel characterize-diffusion``: the study's characterization of diffusion workloads.

For each workload (one inference of one prompt, warm):

- the attention sequence length at every attention call, per denoising step and UNet block (the
  U-shaped cycle of Figs. 8-9) and its max/min ratio;
- attention and convolution seconds per inference (forward hooks on every ``diffusers``
  ``Attention`` and every ``Conv1d/2d/3d``), with eager attention and with SDPA, over image sizes
  (Fig. 10);
- temporal against spatial attention, seconds and FLOPs (Fig. 12), and over frame counts
  (Fig. 14) for video workloads.

Writes ``diffusion-characterization.json`` and ``.md`` (beside the study's figures) to ``--out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import GenaccelError
from ..files import write_json
from ..plugin.roles import Denoiser, offers
from .args import device_arg

STUDY = {
    "seq_len_ratio": "Figs. 8-9: sequence length varies up to 4x over a Stable Diffusion inference (U-shaped cycle)",
    "conv_after_flash": "Fig. 7/10: after Flash Attention, Convolution takes up to 44% of a diffusion TTI model's time "
                        "and grows faster with image size than Attention",
    "temporal": "Fig. 12: in Make-A-Video, temporal attention takes 2x the time of spatial attention with 9x fewer FLOPs",
    "frames": "Fig. 14: temporal attention FLOPs grow quadratically with the number of frames, spatial linearly",
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def arguments(p) -> None:
    p.add_argument("workloads", nargs="+", help="diffusion workloads, e.g. stable-diffusion/t-i make-a-video/t-v")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset")
    model.add_argument("--checkpoint")
    p.add_argument("--steps", type=int, default=2, help="denoising steps of the profiled inference")
    p.add_argument("--image-sizes", type=_ints, default=(), help="image sizes of the Conv vs Attention sweep (Fig. 10)")
    p.add_argument("--frame-counts", type=_ints, default=(), help="frame counts of the temporal attention sweep (Fig. 14)")
    p.add_argument("--device", type=device_arg, default="cpu")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)


def characterize_diffusion(args, registry) -> int:
    from ..report.tables import table
    from ..run.config import RunConfig
    from ..run.diffusion import profile_once

    for w in args.workloads:
        if not offers(registry.workload(w).roles, Denoiser):
            raise GenaccelError(f"workload {w!r} is not a diffusion workload (no Denoiser role)")
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"study": STUDY, "workloads": []}
    md = ["# Diffusion characterization", ""]
    for w in args.workloads:
        base = RunConfig(workload=w, preset=args.preset, checkpoint=args.checkpoint, device=args.device,
                         dtype=args.dtype, seed=args.seed)
        t0 = time.perf_counter()
        print(f"{w}: attention profile (eager, sdpa)", file=sys.stderr, flush=True)
        eager = profile_once(registry, base, args.steps, attention="eager")
        sdpa = profile_once(registry, base, args.steps, attention="sdpa")
        s = eager["summary"]
        entry = {"workload": w, "preset": args.preset, "steps": args.steps,
                 "attention": {k: s[k] for k in s if k != "profile"}, "eager": eager, "sdpa": sdpa,
                 "image_sweep": [], "frame_sweep": []}
        step0 = [r["query_len"] for r in eager["sequence_profile"] if r["step"] == 0 and r["kind"] == "spatial"]
        md += [f"## {w} ({args.preset or args.checkpoint}, {args.steps} steps)", "",
               f"- attention sequence length (spatial self-attention, step 0, in call order): {' '.join(map(str, step0))}",
               f"- max/min sequence length {s['max_seq_len']}/{s['min_seq_len']} = **{s['seq_len_ratio']:.1f}×** "
               f"(study: {STUDY['seq_len_ratio']})"]
        rows = [[a["attention"], f"{a['inference_s']:.3f}", f"{a['attention_s']:.3f}", f"{a['attention_share']:.0%}",
                 f"{a['conv_s']:.3f}", f"{a['conv_share']:.0%}"] for a in (eager, sdpa)]
        md += ["", table(["attention", "inference (s)", "Attention (s)", "Attention share", "Conv (s)", "Conv share"],
                         rows), "", f"Study: {STUDY['conv_after_flash']}", ""]
        kinds = s["kinds"]
        if "temporal" in kinds:
            md += [table(["kind", "calls", "seconds", "GFLOPs"],
                         [[k, str(v["calls"]), f"{v['seconds']:.4f}", f"{v['flops'] / 1e9:.3f}"] for k, v in kinds.items()]),
                   "", f"- temporal / spatial attention: time **{s['temporal_over_spatial_seconds']:.2f}×**, FLOPs "
                   f"**{s['temporal_over_spatial_flops']:.3f}×** (study: {STUDY['temporal']})", ""]
        for size in args.image_sizes:
            print(f"{w}: image size {size}", file=sys.stderr, flush=True)
            pair = [profile_once(registry, base, args.steps, attention=a, options={"image_size": size}) for a in ("eager", "sdpa")]
            entry["image_sweep"].append({"image_size": size, **{p["attention"]: {k: p[k] for k in (
                "inference_s", "attention_s", "conv_s", "attention_share", "conv_share")} for p in pair}})
        if entry["image_sweep"]:
            md += ["Conv vs Attention over image size (Fig. 10):", "",
                   table(["image size", "eager Attention (s)", "eager Conv (s)", "sdpa Attention (s)", "sdpa Conv (s)",
                          "sdpa Conv share"],
                         [[str(r["image_size"]), f"{r['eager']['attention_s']:.3f}", f"{r['eager']['conv_s']:.3f}",
                           f"{r['sdpa']['attention_s']:.3f}", f"{r['sdpa']['conv_s']:.3f}",
                           f"{r['sdpa']['conv_share']:.0%}"] for r in entry["image_sweep"]]), ""]
        if args.frame_counts and "temporal" in kinds:
            for frames in args.frame_counts:
                print(f"{w}: {frames} frames", file=sys.stderr, flush=True)
                p = profile_once(registry, base, args.steps, attention="sdpa", options={"frames": frames})
                k = p["summary"]["kinds"]
                entry["frame_sweep"].append({"frames": frames, "temporal": k["temporal"], "spatial": k["spatial"]})
            md += ["Temporal vs spatial attention over frame counts (Fig. 14; sdpa):", "",
                   table(["frames", "temporal GFLOPs", "spatial GFLOPs", "temporal (s)", "spatial (s)"],
                         [[str(r["frames"]), f"{r['temporal']['flops'] / 1e9:.4f}", f"{r['spatial']['flops'] / 1e9:.4f}",
                           f"{r['temporal']['seconds']:.4f}", f"{r['spatial']['seconds']:.4f}"]
                          for r in entry["frame_sweep"]]), "", f"Study: {STUDY['frames']}", ""]
        entry["seconds"] = time.perf_counter() - t0
        doc["workloads"].append(entry)
    write_json(args.out / "diffusion-characterization.json", doc)
    (args.out / "diffusion-characterization.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0
