"""Tensor parallelism over ``torch.distributed``: the launch of N ranks and the sharding of a
Hugging Face decoder (Llama, Chameleon) between them.

Launch: ``genaccel run ... --tp N`` (also ``ablate``, ``generate``, ``profile``) starts N copies of
the same command through torch.distributed's own launcher (:func:`torch.distributed.launcher.api.elastic_launch`,
what ``torchrun`` runs), backend NCCL on CUDA (rank r on ``cuda:r``) and Gloo on CPU.  A command
already started by ``torchrun`` (``WORLD_SIZE`` set) runs as its rank; several nodes are launched
with torchrun itself (see the README).  A rank that fails stops the others (the launcher's agent
kills them) and the run ends with one line naming the rank; a rank that hangs makes the others'
collectives time out after ``$GENACCEL_TP_TIMEOUT`` seconds (default 600), which ends the run the
same way.

Sharding (Megatron's, as gpt-fast's ``tp.py``): q/k/v and the MLP's gate/up projections are split
by output columns (whole heads, KV heads included, so the KV cache holds each rank's heads only),
o_proj and down_proj by input rows followed by an all-reduce, the LM head by vocabulary columns
followed by an all-gather, the embedding by vocabulary rows (each rank looks up the ids it holds,
zeros for the others, then an all-reduce); norms are replicated, and the embedding and head too
when the vocabulary does not split in N or they are tied.  The collectives are
``torch.distributed._functional_collectives``, which torch.compile traces, so compile and CUDA
graphs still apply.  Sharding happens on the meta device, before weights exist: a rank
materializes only its shard (random weights are drawn whole one tensor at a time and sliced, so
every ``--tp`` gives the same model).
"""

from __future__ import annotations

import os
import sys
import types
import uuid

import attrs

from .errors import GenaccelError

TIMEOUT_ENV = "GENACCEL_TP_TIMEOUT"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_rank() -> bool:
    """Whether this process is one rank of a launched group (torchrun or ``--tp``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def timeout_s() -> float:
    return float(os.environ.get(TIMEOUT_ENV, "600"))


def check_launch(tp: int, device: str) -> None:
    """What can be told before any rank starts: the backend exists, there are devices enough."""
    import torch
    import torch.distributed as dist

    if tp < 1:
        raise GenaccelError(f"--tp {tp}: expected a positive number of ranks")
    if not dist.is_available():
        raise GenaccelError(f"--tp {tp}: this torch build has no torch.distributed")
    backend = backend_for(device)
    available = dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()
    if not available:
        raise GenaccelError(f"--tp {tp} on {device} needs the {backend} backend, which this torch build lacks")
    if backend == "nccl":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if tp > count:
            raise GenaccelError(f"--tp {tp} needs {tp} CUDA devices (one per rank); {count} visible")
        if ":" in device and device != "cuda:0":
            raise GenaccelError(f"--tp {tp} with --device {device}: rank r runs on cuda:r; give --device cuda "
                                "(choose devices with CUDA_VISIBLE_DEVICES)")


def launch(argv: list[str], tp: int, device: str, module: str = "genaccel.cli") -> int:
    """Run ``genaccel <argv>`` as ``tp`` ranks on this node and wait for them; 0 when all succeed,
    else one line naming the first rank that failed (the launcher stops the others)."""
    import logging

    check_launch(tp, device)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=tp, run_id=f"genaccel-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    try:
        elastic_launch(config, sys.executable)("-m", module, *argv)
    except ChildFailedError as e:
        failed, failure = e.get_first_failure()
        code = failure.exitcode
        what = f"was killed by {failure.signal_name()}" if code < 0 else f"exited with code {code}"
        print(f"genaccel: error: rank {failed} of {tp} {what}; the other ranks were stopped", file=sys.stderr)
        return 2 if code == 2 else 3
    return 0


GROUP_PIDS: tuple[int, ...] = ()  # the other ranks of this machine, whose CPU use is the group's own


def local_world_size() -> int:
    """Ranks on this machine (1 outside a launched group)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def init_rank(device: str) -> str:
    """Join the launched group; returns this rank's device (``cuda:<local rank>`` on CUDA)."""
    import datetime

    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    elif "OMP_NUM_THREADS" not in os.environ:  # CPU ranks share the cores instead of each taking all of them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world_size()))
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=timeout_s()))
    global GROUP_PIDS
    GROUP_PIDS = tuple(pid for pid, host in gather_objects((os.getpid(), os.uname().nodename))
                       if host == os.uname().nodename and pid != os.getpid())
    if os.environ.get("GENACCEL_TEST_KILL_RANK") == str(rank()):  # tests: a rank that dies
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return device


def active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@attrs.frozen
class TensorParallel:
    """How a model was sharded (``hf_model.tensor_parallel``)."""

    rank: int
    world_size: int
    heads: int  # of the whole model
    kv_heads: int
    vocab_parallel: bool  # the LM head and the embedding split by vocabulary (else replicated)


def _group():
    import torch.distributed as dist

    return dist.group.WORLD


def _all_reduce(module, args, out):
    from torch.distributed import _functional_collectives as funcol

    from .profiling import region

    with region("Communication", "all_reduce"):
        return funcol.wait_tensor(funcol.all_reduce(out, "sum", _group()))


def _all_gather_last(module, args, out):
    from torch.distributed import _functional_collectives as funcol

    from .profiling import region

    with region("Communication", "all_gather"):
        import torch

        gathered = funcol.wait_tensor(funcol.all_gather_single(out.contiguous(), 0, _group()))  # ranks stacked on dim 0
        return torch.cat(gathered.chunk(module.tensor_parallel_size, 0), dim=-1)


def _vocab_parallel_embedding(module, ids):
    """The forward of an embedding split by vocabulary rows: this rank's rows, zeros for ids it
    does not hold, summed over the ranks (each id is held by one rank, so the sum is exact)."""
    import torch.nn.functional as F
    from torch.distributed import _functional_collectives as funcol

    from .profiling import region

    local = ids - module.vocab_start
    outside = (local < 0) | (local >= module.weight.shape[0])
    out = F.embedding(local.masked_fill(outside, 0), module.weight).masked_fill(outside.unsqueeze(-1), 0)
    with region("Communication", "all_reduce"):
        return funcol.wait_tensor(funcol.all_reduce(out, "sum", _group()))


def _shard_param(module, name: str, dim: int, rank_: int, n: int) -> None:
    """Keep this rank's slice of ``module.<name>`` along ``dim`` (a meta tensor stays meta); the
    full shape is kept in ``module.tp_shards`` for :func:`fill_shard`."""
    import torch
    from torch import nn

    param = getattr(module, name)
    full = tuple(param.shape)
    if full[dim] % n:
        raise GenaccelError(f"{type(module).__name__}.{name} of {full[dim]} along dim {dim} does not split in {n}")
    if param.is_meta:
        shape = list(full)
        shape[dim] //= n
        data = torch.empty(shape, dtype=param.dtype, device="meta")
    else:
        data = param.detach().chunk(n, dim)[rank_].clone()
    setattr(module, name, nn.Parameter(data, requires_grad=param.requires_grad))
    shards = dict(getattr(module, "tp_shards", {}))
    shards[name] = (dim, full, rank_, n)
    module.tp_shards = shards


def _linear(module, dim: int, rank_: int, n: int) -> None:
    _shard_param(module, "weight", dim, rank_, n)
    if module.bias is not None:
        if dim == 1:
            raise GenaccelError(f"a row-parallel {type(module).__name__} with a bias is not supported")
        _shard_param(module, "bias", 0, rank_, n)
    module.out_features, module.in_features = module.weight.shape


def shard_causal_lm(hf) -> TensorParallel | None:
    """Shard a Llama-like ``hf`` (``hf.model.layers[i].self_attn``/``.mlp``, ``hf.lm_head``) in
    place between the ranks of the group; nothing without a group of 2 or more."""
    import torch.distributed as dist

    if not active():
        return None
    r, n = dist.get_rank(), dist.get_world_size()
    cfg = hf.config
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    if heads % n or kv_heads % n:
        divisors = [d for d in range(1, kv_heads + 1) if heads % d == 0 and kv_heads % d == 0]
        raise GenaccelError(f"--tp {n} does not divide the model's {heads} attention heads and {kv_heads} KV heads; "
                            f"use --tp {', '.join(map(str, divisors))}")
    for layer in hf.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj):
            _linear(lin, 0, r, n)
        for lin in (attn.o_proj, mlp.down_proj):
            _linear(lin, 1, r, n)
            lin.register_forward_hook(_all_reduce)
        for norm in (getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)):  # Chameleon: per-head norms
            if norm is not None and norm.weight.dim() == 2:
                _shard_param(norm, "weight", 0, r, n)
                if getattr(norm, "bias", None) is not None:
                    _shard_param(norm, "bias", 0, r, n)
        for attr, total in (("num_heads", heads), ("num_key_value_heads", kv_heads)):
            if hasattr(attn, attr):
                setattr(attn, attr, total // n)
    embed = hf.model.embed_tokens
    vocab_parallel = hf.lm_head.out_features % n == 0 and hf.lm_head.weight is not embed.weight
    if vocab_parallel:
        _linear(hf.lm_head, 0, r, n)
        hf.lm_head.tensor_parallel_size = n
        hf.lm_head.register_forward_hook(_all_gather_last)
        _shard_param(embed, "weight", 0, r, n)  # its vocabulary splits as the head's
        embed.vocab_start = r * embed.weight.shape[0]
        embed.forward = types.MethodType(_vocab_parallel_embedding, embed)
    hf.tensor_parallel = TensorParallel(r, n, heads, kv_heads, vocab_parallel)
    return hf.tensor_parallel


def fill_shard(module, name: str, param, std: float, generator) -> bool:
    """Fill a sharded ``param`` with its slice of the whole tensor's random draw (the same values
    as an unsharded model); False when ``module.<name>`` is not sharded."""
    import torch

    shard = getattr(module, "tp_shards", {}).get(name)
    if shard is None:
        return False
    dim, full, r, n = shard
    whole = torch.empty(full, device=param.device).normal_(0.0, std, generator=generator)  # float32, as unsharded
    param.copy_(whole.chunk(n, dim)[r])
    return True


def _owned_params(hf) -> dict:
    """``name -> (module, attribute, parameter)`` for each parameter once (a tied one by its first name)."""
    out, seen = {}, set()
    for prefix, module in hf.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                out[f"{prefix}.{attr}" if prefix else attr] = (module, attr, param)
    return out


def load_shards(hf, path, device: str, *, allow_missing: bool = False) -> None:
    """Fill ``hf``, built on the meta device and sharded by :func:`shard_causal_lm`, from the
    safetensors files of the checkpoint folder ``path`` (one file or several with
    ``model.safetensors.index.json``): a sharded weight's slice is read alone (``get_slice``), a
    replicated one whole.  Missing, unexpected and misshapen weights are judged as a whole load's
    (:func:`genaccel.workload.check_loading_info`); the model records the names left random in
    ``genaccel_missing_weights`` and the bytes this rank read in ``genaccel_checkpoint_bytes_read``."""
    import contextlib
    from pathlib import Path

    import torch
    from safetensors import safe_open

    from .files import read_json_object
    from .workload import check_loading_info, init_random_weights

    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        where = dict(read_json_object(index, "checkpoint index").get("weight_map") or {})
    else:
        where = {}
        for file in sorted(path.glob("*.safetensors")):
            with safe_open(str(file), "pt") as f:
                where.update(dict.fromkeys(f.keys(), file.name))
    absent = sorted({f for f in where.values() if not (path / f).is_file()})
    if absent:
        raise GenaccelError(f"checkpoint {str(path)!r}: its index names {len(absent)} files that are not there "
                            f"({', '.join(absent[:3])}); copy the whole checkpoint")
    params = _owned_params(hf)
    missing = [n for n in params if n not in where]
    unexpected = [n for n in where if n not in params and "rotary_emb" not in n]
    with contextlib.ExitStack() as files:
        opened = {}

        def file_of(name):
            if where[name] not in opened:
                opened[where[name]] = files.enter_context(safe_open(str(path / where[name]), "pt", device="cpu"))
            return opened[where[name]]

        def full_shape(name):
            module, attr, param = params[name]
            shard = getattr(module, "tp_shards", {}).get(attr)
            return tuple(shard[1]) if shard else tuple(param.shape)

        mismatched = [n for n in params if n in where and tuple(file_of(n).get_slice(n).get_shape()) != full_shape(n)]
        hf.genaccel_missing_weights = check_loading_info(
            path, {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched},
            allow_missing=allow_missing)
        hf.to_empty(device=device)
        if missing:
            init_random_weights(hf, seed=0)
        read = 0
        with torch.no_grad():
            for name, (module, attr, param) in _owned_params(hf).items():  # to_empty made new parameters
                if name not in where:
                    continue
                shard = getattr(module, "tp_shards", {}).get(attr)
                if shard is None:
                    part = file_of(name).get_tensor(name)
                else:
                    dim, full, r, n = shard
                    size = full[dim] // n
                    part = file_of(name).get_slice(name)[(slice(None),) * dim + (slice(r * size, (r + 1) * size),)]
                param.copy_(part)
                read += part.numel() * part.element_size()
    hf.genaccel_checkpoint_bytes_read = read


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (a small picklable value), in rank order; ``[obj]`` without a group."""
    import torch.distributed as dist

    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def rank_summary(summary: dict) -> dict:
    """A case's group figures (rank 0's) and each rank's own: peak memory, parameter bytes, bytes read
    from a checkpoint, bytes read per decode step and MBU.  Every rank calls it at the same point (a collective)."""
    keys = ("peak_memory_bytes", "peak_memory_increase_bytes", "model_bytes", "checkpoint_bytes_read",
            "bytes_per_decode_step", "mbu", "mbu_p50", "decode_tokens_per_s")
    mine = {k: summary.get(k) for k in keys}
    ranks = gather_objects(mine)
    if len(ranks) == 1:
        return {}
    return {"tp": len(ranks), "ranks": [{"rank": i, **r} for i, r in enumerate(ranks)],
            "model_bytes_all_ranks": sum(r["model_bytes"] or 0 for r in ranks)}


def finish() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --- the command line -------------------------------------------------------------------------


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


def tensor_parallel(args, argv: list[str]) -> int | None:
    """``--tp``: in a launched rank, join the group and let the command run (None); else launch the
    ranks (a list of sizes: one launch each, then the scaling table) and return the exit code."""
    import atexit
    import shutil
    import tempfile

    sizes = args.tp
    if is_rank():
        if len(sizes) != 1 or sizes[0] != world_size():
            raise GenaccelError(f"--tp {','.join(map(str, sizes))} in a group of {world_size()} ranks: "
                                f"give --tp {world_size()} (torchrun --nproc-per-node times --nnodes)")
        args.device = init_rank(args.device)
        atexit.register(finish)
        if rank() > 0:  # only rank 0 writes reports, outputs and progress
            scratch = tempfile.mkdtemp(prefix=f"genaccel-rank{rank()}-")
            atexit.register(shutil.rmtree, scratch, True)
            args.out = type(args.out)(scratch) if args.out is not None else __import__("pathlib").Path(scratch)
            args.overwrite = True
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
        return None
    if len(sizes) > 1:
        if args.fn.__name__ != "cmd_ablate":
            raise GenaccelError(f"--tp {','.join(map(str, sizes))}: a list of sizes is for ablate (a scaling table); "
                                "give one number")
        return scaling(args, argv, sizes)
    return launch(_with_tp(argv, sizes[0], None), sizes[0], args.device) if sizes[0] > 1 else None


def scaling(args, argv: list[str], sizes: tuple[int, ...]) -> int:
    """``ablate --tp 1,2,4``: one ablation per size under ``<out>/tp<N>``, then ``<out>/scaling.md``
    and ``scaling.json``: each stack's tokens/s and parallel efficiency (speedup over the smallest
    size, divided by the size ratio)."""
    import json
    import time
    from pathlib import Path

    out = Path(args.out) if args.out else Path("runs") / f"ablate-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    codes = {}
    for n in sizes:
        sub = _with_tp(argv, n, str(out / f"tp{n}"))
        if n == 1:
            from .cli import main

            codes[n] = main(sub)
        else:
            codes[n] = launch(sub, n, args.device)
    from .results import case_label

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
    (out / "scaling.json").write_text(json.dumps({"sizes": list(sizes), "rows": table, "exit_codes": codes}, indent=1))
    lines = ["| stack | ranks | tok/s | efficiency |", "|---|---:|---:|---:|"]
    lines += [f"| {r['label']} | {r['tp']} | {r['tokens_per_s'] or float('nan'):.2f} | "
              f"{'-' if r['efficiency'] is None else format(r['efficiency'], '.2f')} |" for r in table]
    (out / "scaling.md").write_text("# Tensor-parallel scaling\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nscaling: {out / 'scaling.md'}")
    return max(codes.values())
