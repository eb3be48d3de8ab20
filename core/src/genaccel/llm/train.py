"""Continue training a causal LM so that it can exit early (LayerSkip's recipe).

Two ingredients (Elhoushi et al., 2024):

- layer dropout rising with depth: layer l of N is skipped, per sample, with probability
  ``p_max * (exp(l ln2 / (N-1)) - 1)``, 0 for the first layer and ``p_max`` for the last;
- an early-exit loss through the shared final norm and LM head: the cross-entropy of layer
  l's output, weighted by ``scale * sum(0..l)`` (the last layer by N-1), over the layers the
  rotational curriculum supervises at that step (every R-th layer, shifting each step).

To keep the step affordable on a CPU, an early exit's loss is taken on a random fraction of
the positions (the last layer's on all of them), and matmuls run in bfloat16 autocast.

The result is saved as a Hugging Face checkpoint (model + tokenizer) that ``--checkpoint``
loads, with ``layerskip.json`` recording how it was trained.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import attrs
import torch
from attrs import validators as v
from tqdm import tqdm

from ..errors import GenaccelError
from ..files import read_json_object, write_json
from .speculative import SETTINGS_FILE


@attrs.frozen(kw_only=True)
class TrainConfig:
    steps: int = attrs.field(default=200, validator=v.ge(1))
    minutes: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))  # stop early after this wall time
    batch_size: int = attrs.field(default=8, validator=v.ge(1))
    seq_len: int = attrs.field(default=256, validator=v.ge(8))
    lr: float = attrs.field(default=1e-3, validator=v.gt(0))
    warmup: int = attrs.field(default=20, validator=v.ge(0))
    max_dropout: float = attrs.field(default=0.1, validator=[v.ge(0), v.lt(1)])
    exit_scale: float = attrs.field(default=1.0, validator=v.ge(0))
    rotation: int = attrs.field(default=4, validator=v.ge(1))
    exit_fraction: float = attrs.field(default=0.25, validator=[v.gt(0), v.le(1)])  # positions per early exit
    autocast: bool = True  # bfloat16 mixed precision (weights and optimizer stay float32)
    seed: int = 0


def dropout_rates(num_layers: int, p_max: float) -> list[float]:
    if num_layers == 1:
        return [0.0]
    return [p_max * (math.exp(l * math.log(2) / (num_layers - 1)) - 1) for l in range(num_layers)]


def exit_weights(num_layers: int, scale: float, step: int, rotation: int) -> dict[int, float]:
    """Normalized loss weight per supervised layer index (0-based) at ``step``."""
    last = num_layers - 1
    raw = {last: float(last or 1)}
    for l in range(last):
        if (l - step) % rotation == 0 and scale > 0:
            raw[l] = scale * l * (l + 1) / 2 or scale * 0.5  # layer 0 still gets a little weight
    total = sum(raw.values())
    return {l: w / total for l, w in sorted(raw.items())}


def token_windows(tokenizer, texts: list[str], seq_len: int, eos_id: int | None) -> torch.Tensor:
    """Concatenate the texts (EOS between) and cut them into windows of seq_len + 1 tokens."""
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
        if eos_id is not None:
            ids.append(eos_id)
    n = len(ids) // (seq_len + 1)
    if n == 0:
        raise GenaccelError(f"the training text gives {len(ids)} tokens, fewer than one window of {seq_len + 1}")
    return torch.tensor(ids[: n * (seq_len + 1)]).view(n, seq_len + 1)


def _causal(t: int, window: int | None, dtype, device) -> torch.Tensor:
    """(1, 1, t, t) additive mask: each position sees the earlier ones, within ``window`` when given."""
    rows = torch.arange(t, device=device)
    allowed = rows[None, :] <= rows[:, None]
    if window is not None:
        allowed &= rows[None, :] > rows[:, None] - window
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)[None, None]


def early_exit_losses(model, ids, weights: dict[int, float], keep: list[torch.Tensor], sampled: torch.Tensor | None = None):
    """Forward with per-sample layer dropout; returns {layer: cross-entropy} for the supervised layers.

    ``sampled``: flat indices of the positions an early exit's loss is taken on (None: all).
    """
    inputs, targets = ids[:, :-1], ids[:, 1:].flatten()
    hidden = model.embed_tokens(inputs)
    t = inputs.shape[1]
    pos_ids = torch.arange(t, device=ids.device)[None]
    position_embeddings = model.rotary_emb(hidden, pos_ids)
    masks = {w: _causal(t, w, hidden.dtype, ids.device) for w in set(model.windows)}
    losses = {}
    for l, layer in enumerate(model.layers):
        rows = keep[l].nonzero().squeeze(1)
        if rows.numel():
            out = layer(
                hidden.index_select(0, rows), attention_mask=masks[model.windows[l]], position_ids=pos_ids,
                position_embeddings=position_embeddings,
            )
            out = out[0] if isinstance(out, tuple) else out
            hidden = hidden.index_copy(0, rows, out)
        if l in weights:
            flat = hidden.flatten(0, 1)
            early = sampled is not None and l < len(model.layers) - 1
            rows_l = flat.index_select(0, sampled) if early else flat
            logits = model.head(rows_l)  # the shared norm and head (soft-capped where the architecture caps)
            losses[l] = torch.nn.functional.cross_entropy(logits.float(), targets[sampled] if early else targets)
    return losses


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``config.lr``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    frac = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


class _Trainer:
    """One optimizer step at a time over shuffled token windows, with layer dropout and early-exit losses."""

    def __init__(self, instance, windows: torch.Tensor, config: TrainConfig):
        self.model, self.config, self.windows = instance.model, config, windows
        self.device = self.model.device
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        self.rates = dropout_rates(self.model.num_layers, config.max_dropout)
        self.params = [p for p in instance.module.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, betas=(0.9, 0.95), weight_decay=0.1)
        self.order = list(range(len(windows)))
        random.Random(config.seed).shuffle(self.order)
        self.cursor = 0

    def step(self, step: int) -> dict:
        """One step; returns its history row (the loss and each supervised layer's cross-entropy)."""
        config, n_layers = self.config, self.model.num_layers
        idx = [self.order[(self.cursor + i) % len(self.order)] for i in range(config.batch_size)]
        self.cursor += config.batch_size
        batch = self.windows[idx].to(self.device)
        keep = [torch.rand(config.batch_size, generator=self.gen, device=self.device) >= p for p in self.rates]
        weights = exit_weights(n_layers, config.exit_scale, step, config.rotation)
        n_pos = config.batch_size * config.seq_len
        sampled = None
        if config.exit_fraction < 1:
            sampled = torch.randperm(n_pos, generator=self.gen, device=self.device)[: max(1, int(n_pos * config.exit_fraction))]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.autocast):
            losses = early_exit_losses(self.model, batch, weights, keep, sampled)
        loss = sum(weights[l] * losses[l] for l in weights)
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(config, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return {"step": step, "loss": loss.item(), **{f"ce_layer{l + 1}": x.item() for l, x in losses.items()}}


def train_early_exit(instance, texts: list[str], out: Path, config: TrainConfig, *, source: Path | None = None,
                     progress: bool = True) -> dict:
    """Train ``instance`` (a workload whose ``model`` is an HFCausalLM) and save it to ``out``;
    ``source``: the checkpoint it was built from (a continued training keeps its lineage)."""
    windows = token_windows(instance.tokenizer, texts, config.seq_len, instance.eos_token_id)
    trainer = _Trainer(instance, windows, config)
    last = instance.model.num_layers
    instance.module.train()
    history, start = [], time.perf_counter()
    bar = tqdm(total=config.steps, desc="  layerskip training", unit="step", disable=not progress or None, file=sys.stderr)
    step = 0
    with torch.enable_grad():
        for step in range(config.steps):
            if config.minutes is not None and time.perf_counter() - start > config.minutes * 60:
                break
            history.append(trainer.step(step))
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", final=f"{history[-1][f'ce_layer{last}']:.3f}")
            bar.update(1)
            if progress and bar.disable and (step % 10 == 0 or step == config.steps - 1):  # not a terminal: log lines
                print(f"  step {step + 1}/{config.steps}: loss {history[-1]['loss']:.3f} "
                      f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        else:
            step = config.steps
    bar.close()
    instance.module.eval()
    return _save(instance, out, config, history, step=step, seconds=time.perf_counter() - start, windows=len(windows),
                 source=source, rates=trainer.rates)


def _save(instance, out: Path, config: TrainConfig, history: list[dict], *, step: int, seconds: float, windows: int,
          source: Path | None, rates: list[float]) -> dict:
    """The trained model and tokenizer as a Hugging Face folder, with how it was trained in ``layerskip.json``."""
    previous = None
    if source is not None and (Path(source) / SETTINGS_FILE).exists():  # continued training: keep the lineage
        previous = read_json_object(Path(source) / SETTINGS_FILE, "LayerSkip settings").get("trained")
    out.mkdir(parents=True, exist_ok=True)
    instance.module.save_pretrained(out)
    instance.tokenizer.save_pretrained(out)
    info = {
        "trained": {
            "steps": step, "seconds": seconds, "tokens": step * config.batch_size * config.seq_len,
            "windows": windows, "config": attrs.asdict(config), "dropout_rates": rates,
            "final_loss": history[-1] if history else None,
            "continued_from": str(source) if source is not None else None, "previous": previous,
        },
        "history": history,
    }
    write_json(out / SETTINGS_FILE, info)
    return info
