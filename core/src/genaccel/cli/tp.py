"""``--tp``: run a command as N tensor-parallel ranks (launched through torch.distributed's own
launcher, or joined when torchrun started this process), and ``ablate --tp 1,2,4``'s scaling table."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..distributed import group
from ..errors import GenaccelError
from ..files import write_json, write_text
from ..report.results import case_label


def _with_tp(argv: list[str], tp: int, out: str | None) -> list[str]:
    """``argv`` with ``--tp`` set to ``tp`` (and ``--out`` replaced by ``out`` when given)."""
    drop = ("--tp", "--out") if out else ("--tp",)
    result, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in drop:
            skip = True
        elif not a.startswith(tuple(f"{d}=" for d in drop)):
            result.append(a)
    return result + ["--tp", str(tp)] + (["--out", out] if out else [])


def tensor_parallel(args, argv: list[str], main) -> int | None:
    """``--tp``: in a launched rank, join the group and let the command run (None); else launch the
    ranks (a list of sizes: one launch each, then the scaling table, rank 1's run by ``main``) and
    return the exit code."""
    sizes = args.tp
    if group.is_rank():
        world_size = group.world_size()
        if len(sizes) != 1 or sizes[0] != world_size:
            raise GenaccelError(f"--tp {','.join(map(str, sizes))} in a group of {world_size} ranks: "
                                f"give --tp {world_size} (torchrun --nproc-per-node times --nnodes)")
        args.device = group.init_rank(args.device)
        atexit.register(group.finish)
        if group.rank() > 0:  # only rank 0 writes reports, outputs and progress
            scratch = tempfile.mkdtemp(prefix=f"genaccel-rank{group.rank()}-")
            atexit.register(shutil.rmtree, scratch, True)
            args.out = Path(scratch)
            args.overwrite = True
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
        return None
    if len(sizes) > 1:
        if args.fn.__name__ != "ablate_command":
            raise GenaccelError(f"--tp {','.join(map(str, sizes))}: a list of sizes is for ablate (a scaling table); "
                                "give one number")
        return scaling(args, argv, sizes, main)
    return group.launch(_with_tp(argv, sizes[0], None), sizes[0], args.device) if sizes[0] > 1 else None


def scaling(args, argv: list[str], sizes: tuple[int, ...], main) -> int:
    """``ablate --tp 1,2,4``: one ablation per size under ``<out>/tp<N>``, then ``<out>/scaling.md``
    and ``scaling.json``: each stack's tokens/s and parallel efficiency (speedup over the smallest
    size, divided by the size ratio)."""
    out = Path(args.out) if args.out else Path("runs") / f"ablate-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    codes = {}
    for n in sizes:
        sub = _with_tp(argv, n, str(out / f"tp{n}"))
        codes[n] = main(sub) if n == 1 else group.launch(sub, n, args.device)

    rows = {}  # by the stack's label without its size
    for n in sizes:
        path = out / f"tp{n}" / "report.json"
        if not path.exists():
            continue
        for case in json.loads(path.read_text()).get("cases", []):
            s = case.get("summary") or {}
            label = case_label(case.get("optimizations") or (), decoder=(case.get("config") or {}).get("decoder"),
                               skipped=[k["name"] for k in case.get("skipped_optimizations") or ()])
            rows.setdefault(label, {})[n] = s.get("output_tokens_per_s") or s.get("throughput_per_s")
    base = sizes[0]
    table = []
    for label, by_n in rows.items():
        for n in sizes:
            tps = by_n.get(n)
            eff = tps / by_n[base] / (n / base) if tps and by_n.get(base) else None
            table.append({"label": label, "tp": n, "tokens_per_s": tps, "efficiency": eff})
    first = out / f"tp{sizes[0]}" / "report.json"  # the environment of the first size's run
    env = json.loads(first.read_text()).get("environment", {}) if first.exists() else {}
    doc = {"kind": "tp-scaling", "environment": env, "sizes": list(sizes), "rows": table, "exit_codes": codes}
    write_json(out / "scaling.json", doc)
    lines = ["| stack | ranks | tok/s | efficiency |", "|---|---:|---:|---:|"]
    lines += [f"| {r['label']} | {r['tp']} | {r['tokens_per_s'] or float('nan'):.2f} | "
              f"{'-' if r['efficiency'] is None else format(r['efficiency'], '.2f')} |" for r in table]
    write_text(out / "scaling.md", "# Tensor-parallel scaling\n\n" + "\n".join(lines) + "\n")
    from ..report.html_pages import write_scaling_html  # matplotlib and Jinja2 once the ranks are done

    write_scaling_html(doc, out / "scaling.html")
    print("\n".join(lines))
    print(f"\nscaling: {out / 'scaling.md'}, {out / 'scaling.html'}")
    return max(codes.values())
