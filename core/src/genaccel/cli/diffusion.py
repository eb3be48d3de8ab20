"""``genaccel characterize-diffusion``: the study's characterization of diffusion workloads.

For each workload (one inference of one prompt, warm):

- the attention sequence length at every attention call, per denoising step and UNet block (the
  U-shaped cycle of Figs. 8-9) and its max/min ratio;
- attention and convolution seconds per inference (forward hooks on every ``diffusers``
  ``Attention`` and every ``Conv1d/2d/3d``), with eager attention and with SDPA, over image sizes
  (Fig. 10);
- temporal against spatial attention, seconds and FLOPs (Fig. 12), and over frame counts
  (Fig. 14) for video workloads.

Writes ``diffusion-characterization.json`` (schema_version and environment as every report), ``.md`` and
``.html`` (beside the study's figures) to ``--out``.
"""

from __future__ import annotations

import argparse

from ..errors import GenaccelError
from ..files import OutputDir, write_json
from ..plugin.role import offers
from ..plugin.roles import Denoiser
from ..plugin.specs import DTYPES
from .args import csv, device_arg, out_dir, out_path
from .options import DeprecatedAlias

REPORT = "diffusion-characterization.json"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers separated by commas, e.g. 64,128") from None


def arguments(p) -> None:
    p.add_argument("workloads", nargs="+", help="diffusion workloads, e.g. stable-diffusion/t-i make-a-video/t-v")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size (default: each workload's)")
    model.add_argument("--checkpoint", help="local diffusers pipeline directory")
    p.add_argument("--num-inference-steps", type=int, default=2, help="denoising steps of the profiled inference "
                   "(default 2)")
    p.add_argument("--steps", type=int, dest="num_inference_steps", action=DeprecatedAlias, new="--num-inference-steps")
    p.add_argument("--image-sizes", type=_ints, default=(), help="image sizes of the Conv vs Attention sweep (Fig. 10)")
    p.add_argument("--frame-counts", type=_ints, default=(), help="frame counts of the temporal attention sweep (Fig. 14)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="weights and activations (default float32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and prompts (default 0)")
    p.add_argument("--out", type=out_path, help="output directory (default: runs/characterize-diffusion-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace a characterization already in --out")


def characterize_diffusion(args, registry) -> int:
    for w in args.workloads:
        if not offers(registry.workload(w).roles, Denoiser):
            raise GenaccelError(f"workload {w!r} is not a diffusion workload (no Denoiser role)")
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..files import write_text
    from ..report.diffusion import STUDY, diffusion_markdown  # the run layer (torch) once the names are right
    from ..report.html_pages import write_diffusion_html
    from ..report.results import SCHEMA_VERSION
    from ..run.config import RunConfig
    from ..run.diffusion import characterize_workload
    from .args import environment

    out = out_dir(args, "characterize-diffusion")
    OutputDir(out, overwrite=args.overwrite, report=REPORT)  # checked, created and locked before any work
    doc = {"schema_version": SCHEMA_VERSION, "kind": "diffusion-characterization",
           "environment": environment(registry, args.device, args), "study": STUDY, "workloads": []}
    for w in args.workloads:
        base = RunConfig(workload=w, preset=args.preset, checkpoint=args.checkpoint, device=args.device,
                         dtype=args.dtype, seed=args.seed)
        doc["workloads"].append(characterize_workload(registry, base, args.num_inference_steps, image_sizes=args.image_sizes,
                                                      frame_counts=args.frame_counts))
    md = diffusion_markdown(doc, args.checkpoint)
    write_json(out / REPORT, doc)
    write_text(out / "diffusion-characterization.md", md)
    write_diffusion_html(doc, out / "diffusion-characterization.html", args.checkpoint)
    print(md)
    print(f"\ncharacterization: {out / REPORT}, {out / 'diffusion-characterization.md'}, "
          f"{out / 'diffusion-characterization.html'}")
    return 0
