"""HSTU workloads: synthetic user histories (the study's), jagged batches, ranking and retrieval."""

from __future__ import annotations

import functools
import json
import random
import time

import attrs
import torch
from genaccel.api import (
    AttentionSite,
    BuildOptions,
    GenaccelError,
    LengthDistribution,
    init_random_weights,
    phase,
    read_text,
    synchronize,
)

from .model import HSTU, HSTUConfig, Jagged, dense_attention, fused_attention
from .presets import PRESETS

# The study's synthetic histories: 4507-5121 events (mean 4813.9), item ids 0..6000.
HISTORY_LENGTHS = LengthDistribution(min=4507, max=5121, mean=4813.9, sigma=0.05)
NUM_CANDIDATES = 16
TOP_K = 10


@attrs.frozen(kw_only=True)
class HistorySample:
    id: str
    items: tuple[int, ...] = attrs.field(converter=tuple)
    actions: tuple[int, ...] = attrs.field(converter=tuple)
    timestamps: tuple[int, ...] = attrs.field(converter=tuple)
    num_candidates: int = 0

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"history": len(self.items) - self.num_candidates, "candidates": self.num_candidates}


def validate(items, actions, timestamps, offsets, num_targets, cfg: HSTUConfig) -> None:
    """Clear errors for jagged inputs a model cannot take."""
    if offsets.ndim != 1 or len(offsets) < 1 or int(offsets[0]) != 0:
        raise GenaccelError("offsets must be a 1-D tensor starting at 0 (offsets[i]..offsets[i+1] is sequence i)")
    lengths = offsets[1:] - offsets[:-1]
    if (lengths < 0).any():
        bad = int((lengths < 0).nonzero()[0, 0])
        raise GenaccelError(f"offsets are not monotone: offsets[{bad + 1}]={int(offsets[bad + 1])} < offsets[{bad}]={int(offsets[bad])}")
    if int(offsets[-1]) != len(items) or not len(items) == len(actions) == len(timestamps):
        raise GenaccelError(f"offsets end at {int(offsets[-1])} but there are {len(items)} items, {len(actions)} actions "
                            f"and {len(timestamps)} timestamps; all must be equal")
    if len(items) and (int(items.min()) < 0 or int(items.max()) >= cfg.num_items):
        raise GenaccelError(f"item ids must lie in 0..{cfg.num_items - 1}; got {int(items.min())}..{int(items.max())}")
    if len(actions) and (int(actions.min()) < 0 or int(actions.max()) >= cfg.num_actions):
        raise GenaccelError(f"action types must lie in 0..{cfg.num_actions - 1}; got {int(actions.min())}..{int(actions.max())}")
    if len(lengths) and int(lengths.max()) > cfg.max_len:
        raise GenaccelError(f"a sequence of {int(lengths.max())} events exceeds the model's maximum of {cfg.max_len}")
    if (num_targets > lengths).any():
        raise GenaccelError("a sequence has more candidates than events")
    step = timestamps[1:] - timestamps[:-1]
    inside = torch.ones_like(step, dtype=torch.bool)
    inside[(offsets[1:-1] - 1).clamp(min=0)[lengths[:-1] > 0]] = False  # across sequence boundaries is fine
    if len(step) and ((step < 0) & inside).any():
        pos = int(((step < 0) & inside).nonzero()[0, 0])
        raise GenaccelError(f"timestamps go backwards inside a sequence at event {pos + 1}: "
                            f"{int(timestamps[pos])} then {int(timestamps[pos + 1])}")


def _jagged_lengths(module, args, kwargs, output) -> tuple[int, int, bool, int]:
    """An HSTU layer's call (``x`` (ΣL, D), the layout): query and key lengths are the longest history's (what
    the dense baseline pads to; shorter after truncation), the batch the number of histories."""
    layout = args[1]
    longest = int(layout.lengths.max())
    return longest, longest, False, len(layout.lengths)


class HSTUWorkload:

    def __init__(self, task: str, model: HSTU, options: BuildOptions):
        self.task, self.model, self.module, self.options = task, model, model, options
        self.cfg = model.cfg
        self.random_weights = True
        self.eos_token_id, self.pad_token_id = None, 0

    def describe(self) -> dict:
        return {"preset": self.options.preset, "task": self.task, "random_weights": True,
                "parameters": sum(p.numel() for p in self.module.parameters()), **attrs.asdict(self.cfg),
                "attention": self.model.attention.__name__,
                "inputs": f"histories of --data {self.options.data}" if self.options.data is not None
                else "synthetic histories (the study's lengths, item ids, timestamps, actions)"}

    # --- AttentionRecord: every layer's attention, causal self-attention over the history ----------
    period_options: dict = {}

    def attention_sites(self) -> list:
        return [AttentionSite(name=f"layers.{i}", module=layer, kind="self", lengths=_jagged_lengths)
                for i, layer in enumerate(self.model.layers)]

    def set_attention(self, impl: str) -> None:
        if impl == "triton":  # CUDA (or Triton's interpreter): the fused path as one Triton kernel
            from .triton_attention import triton_attention

            self.model.attention = triton_attention
            return
        self.model.attention = {"dense": dense_attention, "fused": fused_attention}[impl]

    def set_compile(self, mode: str) -> str:
        self.model.set_compile(mode)
        return f"each layer's projection and output compiled (mode={mode}, dynamic shapes); attention runs as chosen"

    # --- inputs -----------------------------------------------------------------------------
    def make_samples(self, n: int, seed: int, max_new_tokens=None, seq_len: int | None = None) -> list[HistorySample]:
        cands = NUM_CANDIDATES if self.task == "ranking" else 0
        if seq_len is not None:  # before anything of that length is built
            if seq_len <= cands:
                raise GenaccelError(f"--seq-len {seq_len} leaves no history before the {cands} candidates; "
                                    f"use {cands + 1}..{self.cfg.max_len}")
            if not 1 <= seq_len <= self.cfg.max_len:
                raise GenaccelError(f"--seq-len {seq_len} is outside what hstu/{self.task} takes: 1..{self.cfg.max_len} "
                                    f"events{' including the candidates' if cands else ''}")
        if self.options.data is not None:
            return self._load(n)
        rng = random.Random(seed)
        lengths = [seq_len - cands] * n if seq_len else HISTORY_LENGTHS.sample(n, rng)
        samples = []
        for i, length in enumerate(lengths):
            t = rng.randrange(1_600_000_000, 1_700_000_000)
            ts = []
            for _ in range(length):
                t += int(rng.expovariate(1 / 3600))
                ts.append(t)
            ts += [t + 1] * cands  # candidates are scored at the request time
            items = [rng.randrange(self.cfg.num_items) for _ in range(length + cands)]
            actions = [rng.randrange(self.cfg.num_actions) for _ in range(length)] + [0] * cands
            samples.append(HistorySample(id=f"synthetic/{i}", items=items, actions=actions, timestamps=ts, num_candidates=cands))
        return samples

    def _load(self, n: int) -> list[HistorySample]:
        """--data DIR: *.jsonl files, one history per line: {"items": [...], "actions": [...], "timestamps": [...]};
        for ranking, the last 16 events of a line are the candidates it scores."""
        data = self.options.data
        files = sorted(data.glob("*.jsonl")) if data.is_dir() else []
        if not files:
            what = "is not a directory" if not data.is_dir() else "holds no *.jsonl history files"
            raise GenaccelError(f"--data {str(data)!r} {what}; give a directory of *.jsonl files, one history per line "
                                '{"items": [...], "actions": [...], "timestamps": [...]}')
        samples = []
        for f in files:
            for lineno, line in enumerate(read_text(f, "history file").splitlines(), start=1):
                if line.strip() and len(samples) < n:
                    samples.append(self._history(f"{f.name}:{lineno}", line, f"{f}:{lineno}"))
        if len(samples) < n:
            raise GenaccelError(f"--data {str(data)!r} holds {len(samples)} {'history' if len(samples) == 1 else 'histories'} but {n} samples are asked for; "
                                f"give --samples {len(samples)} or fewer (a multiple of --batch-size), or add histories")
        return samples

    def _history(self, sid: str, line: str, where: str) -> HistorySample:
        """One checked history line: equal-length lists of whole numbers in range, time not going backwards."""
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise GenaccelError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise GenaccelError(f'{where}: a history is a JSON object {{"items": [...], "actions": [...], '
                                f'"timestamps": [...]}}, not a {type(row).__name__}')
        cfg, cands = self.cfg, NUM_CANDIDATES if self.task == "ranking" else 0
        ranges = {"items": (0, cfg.num_items - 1), "actions": (0, cfg.num_actions - 1), "timestamps": (0, 2**63 - 1)}
        for key, (lo, hi) in ranges.items():
            values = row.get(key)
            if not isinstance(values, list):
                raise GenaccelError(f"{where}: {key!r} must be a list of whole numbers; got {json.dumps(values)[:40]}")
            for j, x in enumerate(values):
                if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
                    raise GenaccelError(f"{where}: {key}[{j}] is {json.dumps(x)[:40]}; {key} must be whole numbers "
                                        f"in {lo}..{hi}")
        n_items, n_actions, n_ts = len(row["items"]), len(row["actions"]), len(row["timestamps"])
        if not n_items == n_actions == n_ts:
            raise GenaccelError(f"{where}: {n_items} items, {n_actions} actions and {n_ts} timestamps; "
                                "the three lists must have one entry per event")
        need = cands + 1
        if n_items < need:
            what = f"a history and the {cands} candidates (its last {cands} events)" if cands else "a history"
            raise GenaccelError(f"{where}: {n_items} events; hstu/{self.task} needs at least {need} for {what}")
        if n_items > cfg.max_len:
            raise GenaccelError(f"{where}: {n_items} events; the model takes at most {cfg.max_len}: keep the last "
                                f"{cfg.max_len}")
        ts = row["timestamps"]
        back = next((j for j in range(1, n_ts) if ts[j] < ts[j - 1]), None)
        if back is not None:
            raise GenaccelError(f"{where}: timestamps go backwards at event {back}: {ts[back - 1]} then {ts[back]}")
        return HistorySample(id=sid, items=row["items"], actions=row["actions"], timestamps=ts, num_candidates=cands)

    def collate(self, batch: list[HistorySample]):
        dev = self.options.device
        items = torch.tensor([x for s in batch for x in s.items], dtype=torch.long)
        actions = torch.tensor([x for s in batch for x in s.actions], dtype=torch.long)
        ts = torch.tensor([x for s in batch for x in s.timestamps], dtype=torch.long)
        offsets = torch.tensor([0] + [len(s.items) for s in batch], dtype=torch.long).cumsum(0)
        targets = torch.tensor([s.num_candidates for s in batch], dtype=torch.long)
        validate(items, actions, ts, offsets, targets, self.cfg)
        layout = Jagged(offsets=offsets.to(dev), timestamps=ts.to(dev), num_targets=targets.to(dev))
        return items.to(dev), actions.to(dev), layout

    # --- one forward per batch ---------------------------------------------------------------
    @torch.no_grad()
    def run_batch(self, batch: list[HistorySample]) -> dict:
        items, actions, layout = self.collate(batch)
        sync = functools.partial(synchronize, self.options.device)
        sync()
        t0 = time.perf_counter()
        with phase("embedding"):
            x = self.model.embed(items, actions).to(self.options.torch_dtype)
        sync()
        t1 = time.perf_counter()
        with phase("hstu"):
            y, out_layout = self.model(x, layout)
        ends = out_layout.offsets[1:]
        if self.task == "ranking":
            logits = self.model.ranking_head(y)
            outputs = [logits[e - t : e].argmax(-1).tolist() for e, t in zip(ends.tolist(), out_layout.num_targets.tolist())]
        else:
            last = y[(ends - 1).clamp(min=0)]
            scores = last @ self.model.item_emb.weight.to(last.dtype).T
            outputs = scores.topk(TOP_K, dim=-1).indices.tolist()
        sync()
        t2 = time.perf_counter()
        return {"outputs": outputs, "model_s": t2 - t1, "phases": {"embedding": t1 - t0, "hstu": t2 - t1},
                "records": [{"embedding_s": t1 - t0, "units": len(out)} for out in outputs]}


def build_for(task: str):
    def build(options: BuildOptions) -> HSTUWorkload:
        if options.checkpoint is not None:
            raise GenaccelError("hstu workloads have no checkpoint format yet; use --preset tiny|small|paper")
        name = options.preset_in(PRESETS, f"hstu/{task}")
        with torch.device("meta"):
            model = HSTU(HSTUConfig(**PRESETS[name]))
        model = model.to_empty(device=options.device)
        init_random_weights(model, seed=options.seed)
        model.to(options.torch_dtype).eval()
        return HSTUWorkload(task, model, options)

    return build


# each task's build, named by the plugin's registration as an import string
build_ranking = build_for("ranking")
build_retrieval = build_for("retrieval")
