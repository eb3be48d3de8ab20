"""``genaccel characterize-study`` (also ``characterize-diffusion``, its older name): the characterization of
Golden et al. 2024 for every workload that plays ``AttentionRecord``.

For each workload (one inference of one prompt or sample, the baseline stack, warm where timed):

- Fig. 8: the query and key length at every attention call over one period of an inference (one denoising
  step, one parallel-decoding step, a whole generation), per kind (self, cross, spatial, temporal);
- Fig. 9: the distribution of those lengths at each of ``--image-sizes`` (workloads that take an image size;
  the others at their own);
- for latent diffusion (Denoiser) workloads: attention and convolution seconds per inference, eager and SDPA,
  over ``--image-sizes`` (Fig. 10), and temporal against spatial attention (Fig. 12) over ``--frame-counts``
  (Fig. 14);
- for them too, Fig. 7: the inference's time by operator (Conv, Linear, Attention, temporal attention for video,
  Norm, Resample, Other; by forward hooks, the innermost module wins) with baseline attention and with SDPA, both
  over the baseline's time (``fig7-breakdown.png``);
- the peak memory of one denoising step at each of ``--image-sizes`` (the workload's own size without them),
  eager and SDPA (the CUDA allocator's peak; on CPU the allocator's events under ``torch.profiler``), beside the
  study's model of the attention similarity matrices (Section V-B: ``batch·heads·Lq·Lk·bytes`` per call, from
  the built UNet's stages and heads; the largest and the sum over the forward) (``fig-memory.png``).
- Fig. 5, the roofline: one whole inference (the baseline stack, one sample), its FLOPs (counted in eager mode) per
  byte of its parameters (the study's arithmetic intensity, "the ratio of FLOPs to required model capacity") against
  the FLOP/s it attained warm, under this machine's roof (the cached GEMM peak in ``--dtype`` and read bandwidth);
  memory-bound below the ridge point (peak / bandwidth), else compute-bound, beside the study's classification.

Writes ``characterization.json`` (the data, every call), ``characterization.md``, ``characterization.html`` and
the figures' PNGs to ``--out``.
"""

from __future__ import annotations

import argparse

from ..errors import GenaccelError
from ..files import OutputDir, write_json
from ..plugin.role import offers
from ..plugin.roles import AttentionRecord
from ..plugin.specs import DTYPES
from .args import csv, device_arg, out_dir, out_path
from .options import DeprecatedAlias

REPORT = "characterization.json"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers separated by commas, e.g. 64,128") from None


def arguments(p) -> None:
    p.add_argument("workloads", nargs="+", help="workloads with attention, e.g. stable-diffusion/t-i llama/t-t")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size (default: each workload's)")
    model.add_argument("--checkpoint", help="local checkpoint directory")
    p.add_argument("--num-inference-steps", type=int, default=2, help="denoising steps of the diffusion Conv and "
                   "Attention profile (default 2; the attention record takes one period)")
    p.add_argument("--steps", type=int, dest="num_inference_steps", action=DeprecatedAlias, new="--num-inference-steps")
    p.add_argument("--max-new-tokens", type=int, default=16, help="tokens a token model generates in its record "
                   "(default 16)")
    p.add_argument("--image-sizes", type=_ints, default=(), help="image sizes of Fig. 9's distributions, Fig. 10's "
                   "Conv vs Attention sweep and the peak-memory sweep, e.g. 64,128,256,512")
    p.add_argument("--frame-counts", type=_ints, default=(), help="frame counts of the temporal attention sweep (Fig. 14)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="weights and activations (default float32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs (default 0)")
    p.add_argument("--out", type=out_path, help="output directory (default: runs/characterize-study-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace a characterization already in --out")


def characterize_study(args, registry) -> int:
    for w in args.workloads:
        if not offers(registry.workload(w).roles, AttentionRecord):
            raise GenaccelError(f"workload {w!r} has no attention record (its spec does not declare the "
                                "AttentionRecord role): choose workloads that list attention-record in `genaccel list`")
    if args.max_new_tokens < 1:
        raise GenaccelError(f"--max-new-tokens {args.max_new_tokens}: expected a whole number of at least 1")
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..files import write_text
    from ..report.html_pages import write_study_html
    from ..report.results import SCHEMA_VERSION
    from ..report.study_figures import STUDY_FINDINGS, study_figures, study_markdown
    from ..run.config import RunConfig
    from ..run.study import study_entry
    from .args import environment

    out = out_dir(args, "characterize-study")
    OutputDir(out, overwrite=args.overwrite, report=REPORT)  # checked, created and locked before any work
    entries = []
    for w in args.workloads:
        base = RunConfig(workload=w, preset=args.preset, checkpoint=args.checkpoint, device=args.device,
                         dtype=args.dtype, seed=args.seed, max_new_tokens=args.max_new_tokens)
        entries.append(study_entry(registry, base, steps=args.num_inference_steps, image_sizes=args.image_sizes,
                                   frame_counts=args.frame_counts))
    doc = {"schema_version": SCHEMA_VERSION, "kind": "characterization",
           "environment": environment(registry, args.device, args), "study": STUDY_FINDINGS, "workloads": entries,
           "figures": study_figures(entries, out)}
    md = study_markdown(doc, args.checkpoint)
    write_json(out / REPORT, doc)
    write_text(out / "characterization.md", md)
    write_study_html(doc, out / "characterization.html", args.checkpoint)
    print(md)
    print(f"\ncharacterization: {out / REPORT}, {out / 'characterization.md'}, {out / 'characterization.html'}, "
          + ", ".join(str(out / name) for name in doc["figures"].values()))
    return 0
