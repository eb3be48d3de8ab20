"""A tensor-parallel group over ``torch.distributed``: launching N ranks, joining the group, and the
collectives a run needs outside the model (gathering each rank's figures).

Launch: ``genaccel run ... --tp N`` (also ``ablate``, ``generate``, ``profile``) starts N copies of
the same command through torch.distributed's own launcher (:func:`torch.distributed.launcher.api.elastic_launch`,
what ``torchrun`` runs), backend NCCL on CUDA (rank r on ``cuda:r``) and Gloo on CPU.  A command
already started by ``torchrun`` (``WORLD_SIZE`` set) runs as its rank; several nodes are launched
with torchrun itself (see the README).  A rank that fails stops the others (the launcher's agent
kills them) and the run ends with one line naming the rank; a rank that hangs makes the others'
collectives time out after ``$GENACCEL_TP_TIMEOUT`` seconds (default 600), which ends the run the
same way.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import uuid

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from ..errors import GenaccelError

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
    check_launch(tp, device)
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
        os.kill(os.getpid(), signal.SIGKILL)
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (a small picklable value), in rank order; ``[obj]`` without a group."""
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
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
