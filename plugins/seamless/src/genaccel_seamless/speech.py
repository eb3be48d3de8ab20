"""Speech output: the text decoder's second pass, the non-autoregressive T2U and the unit vocoder.

As transformers' ``SeamlessM4Tv2Model.generate`` does after the text: the decoder runs once more
over the chosen translation (its hidden states feed the T2U), the T2U turns them and the
characters of the subwords into units in one forward, and the Code HiFi-GAN turns units into
16 kHz audio: a duration predictor repeats each unit's embedding, then the generator upsamples
320×.  ``Vocoder`` can pad the generator's input to a fixed number of frames (``bucket``) and
trim the audio after, so a compiled or graphed generator sees a few shapes only.
"""

from __future__ import annotations

import torch
from genaccel.api import StepExecutor, phase, synced_now
from torch import nn

SPEECH_PHASES = ("text decoder pass 2", "t2u", "vocoder")


class Vocoder:
    """Units → waveforms with transformers' Code HiFi-GAN modules; the generator runs through
    ``steps`` (eager, compiled or graphed: :meth:`set_compile`) and its input may be padded to a
    multiple of ``bucket`` frames."""

    def __init__(self, code_hifigan: nn.Module):
        self.net = code_hifigan
        self.generator = code_hifigan.hifi_gan
        self.bucket: int | None = None
        self.steps = StepExecutor()

    def set_dtype(self, dtype: torch.dtype) -> int:
        """The generator's weights (and so its arithmetic) in ``dtype``; the waveform comes back in
        float32. How many parameters were cast."""
        self.generator.to(dtype)
        return sum(p.numel() for p in self.generator.parameters())

    def set_compile(self, bucket: int, *, cuda_graph: bool = False) -> None:
        """Compile the generator (fixed shapes: its input padded to multiples of ``bucket``
        frames), replayed from CUDA graphs with ``cuda_graph``."""
        self.bucket = bucket
        self.steps = StepExecutor(str(next(self.generator.parameters()).device))
        self.steps.configure(compile="default", cuda_graph=cuda_graph, fullgraph=False, dynamic=False)

    @torch.no_grad()
    def __call__(self, units: torch.Tensor, lang_id: int, speaker_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.net
        hidden = net.unit_embedding(units).transpose(1, 2)
        durations = torch.clamp(torch.round(torch.expm1(net.dur_predictor(hidden.transpose(1, 2)))).long(), min=1)
        rows = [torch.repeat_interleave(h, d, dim=-1).transpose(0, 1) for h, d in zip(hidden, durations)]
        frames = nn.utils.rnn.pad_sequence(rows, batch_first=True).transpose(1, 2)  # (B, C, F)
        if self.bucket:
            frames = nn.functional.pad(frames, (0, -frames.shape[-1] % self.bucket))
        bsz, n = frames.shape[0], frames.shape[-1]
        lang = net.language_embedding(torch.full((bsz, 1), lang_id, device=units.device)).transpose(1, 2)
        spkr = net.speaker_embedding(torch.full((bsz, 1), speaker_id, device=units.device)).transpose(1, 2)
        inputs = torch.cat([lang.expand(-1, -1, n), frames, spkr.expand(-1, -1, n)], dim=1)
        dtype = next(self.generator.parameters()).dtype
        wave = self.steps.run("generator", self.generator, inputs.to(dtype)).float()
        lengths = net._get_output_hifigan_lengths(net._get_dur_output_lengths(units, durations).view(-1))
        return wave, lengths


@torch.no_grad()
def speak(inst, batch, outputs: list[list[int]]) -> tuple[list, dict[str, float]]:
    """Waveforms (one float array per sample) for the translations, and the seconds of each phase."""
    from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import _compute_new_attention_mask

    hf, dev, cfg = inst.module, inst.options.device, inst.module.config
    pad, eos = cfg.pad_token_id, cfg.eos_token_id
    times = {}
    t0 = synced_now(dev)
    with phase("text decoder pass 2"):
        # the translation ends at its first EOS (random weights decode on past it; T2U cannot read what follows)
        outputs = [out[: out.index(eos) + 1] if eos in out else out for out in outputs]
        seqs = [list(s.input_ids) + out + ([] if out and out[-1] == eos else [eos]) for s, out in zip(batch, outputs)]
        width = max(len(q) for q in seqs)
        ids = torch.tensor([q + [pad] * (width - len(q)) for q in seqs], device=dev)
        hidden, mask = inst.encoder_states
        states = hf.text_decoder(input_ids=ids[:, :-1], encoder_hidden_states=hidden,
                                 encoder_attention_mask=mask).last_hidden_state
    times["text decoder pass 2"] = (t1 := synced_now(dev)) - t0
    with phase("t2u"):
        t2u_mask = _compute_new_attention_mask(states, (ids[:, :-1] != pad).int().sum(1))
        t2u_ids = ids[:, 2:-1].masked_fill(ids[:, 2:-1] == eos, pad)
        subwords = hf._indices_to_subwords(t2u_ids)
        counts = hf._count_character_length_in_subword(t2u_ids, subwords, pad_token_id=pad)
        zero = counts.new_zeros((counts.shape[0], 1))
        counts = torch.cat([zero, counts, zero], dim=1)
        chars = hf._get_char_input_ids(t2u_ids, subwords, counts, pad_token_id=pad)
        out = hf.t2u_model(inputs_embeds=states, char_input_ids=chars, char_count_per_id=counts,
                           attention_mask=t2u_mask)
        units = out[0].argmax(dim=-1)
        # eos, and bos/unk/language tokens that a trained T2U never emits (random weights do): silence (pad)
        special = (units < cfg.vocoder_offset) | (units >= cfg.vocoder_offset + cfg.unit_hifi_gan_vocab_size)
        units = units.masked_fill(special | ~out[1].bool(), cfg.t2u_pad_token_id)
        units = torch.where(units == cfg.t2u_pad_token_id, units, units - cfg.vocoder_offset)
    times["t2u"] = (t2 := synced_now(dev)) - t1
    with phase("vocoder"):
        lang_id = hf.generation_config.vocoder_lang_code_to_id[inst.tgt_lang]
        wave, lengths = inst.vocoder(units, lang_id)
        audio = [w[: int(n)].float().cpu().numpy() for w, n in zip(wave, lengths)]
    times["vocoder"] = synced_now(dev) - t2
    inst.last_units = units
    return audio, times
