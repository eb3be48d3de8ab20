"""SeamlessM4T v2 on the tiny preset: beam search equals transformers', the encoder phases, bad input."""

import numpy as np
import pytest
import torch
from genaccel.api import GenaccelError
from genaccel.llm.kvcache import StaticKVCache
from genaccel.testing import RunConfig, check_bf16_kv, prepared
from genaccel_seamless.workload import SAMPLE_RATE, synthetic_speech, write_wav

MAX_NEW = 10


def _ctx(registry, task, stack=(), sharpen=6.0, **kw):
    ctx = prepared(registry, RunConfig(workload=f"seamless/{task}", preset="tiny", optimizations=stack, **kw))
    with torch.no_grad():  # random weights at 0.02 barely listen to the source: sharpen them so outputs depend on it
        for p in ctx.instance.module.text_decoder.parameters():
            if p.dim() >= 2:
                p.mul_(sharpen)
        for part in ("text_encoder", "speech_encoder"):
            for p in getattr(ctx.instance.module, part).parameters():
                if p.dim() >= 2:
                    p.mul_(sharpen)
    ctx.max_seq_len = 64
    return ctx


def _reference(inst, samples):
    """transformers' generate on the same padded batch (right-padded sources with their mask)."""
    if samples[0].speech is not None:
        length = max(s.speech.shape[0] for s in samples)
        feats = torch.zeros(len(samples), length, samples[0].speech.shape[1])
        mask = torch.zeros(len(samples), length, dtype=torch.long)
        for r, s in enumerate(samples):
            feats[r, : s.speech.shape[0]], mask[r, : s.speech.shape[0]] = s.speech, 1
        source = dict(input_features=feats, attention_mask=mask)
    else:
        length = max(len(s.source_ids) for s in samples)
        ids = torch.full((len(samples), length), inst.pad_token_id)
        mask = torch.zeros(len(samples), length, dtype=torch.long)
        for r, s in enumerate(samples):
            ids[r, : len(s.source_ids)], mask[r, : len(s.source_ids)] = torch.tensor(s.source_ids), 1
        source = dict(input_ids=ids, attention_mask=mask)
    with torch.no_grad():
        out = inst.module.generate(**source, tgt_lang=inst.tgt_lang, generate_speech=False, num_beams=5,
                                   length_penalty=1.0, early_stopping=False, do_sample=False, max_new_tokens=MAX_NEW)
    seq = out.sequences if hasattr(out, "sequences") else out
    return seq[:, 2:].tolist()  # after the decoder start and target-language tokens


COMPILED = ("sdpa", "static-kv", "compile", "compile-kv-reorder")


@pytest.mark.parametrize("stack", [(), ("sdpa", "static-kv"), COMPILED], ids=["dynamic", "static", "compiled"])
@pytest.mark.parametrize("task", ["t-t", "s-t"])
def test_beam_search_equals_transformers_generate(registry, task, stack):
    """The compiled stack: fused GEMVs over 15 beam rows, flex self and cross attention, the
    encoder length symbolic and padded, guards skipped; twice, so the second batch skips them."""
    ctx = _ctx(registry, task, stack)
    inst = ctx.instance
    samples = inst.make_samples(3, seed=0, max_new_tokens=MAX_NEW)
    runs = [ctx.decoder.run(ctx, samples).outputs for _ in range(2 if "compile" in stack else 1)]
    ours = runs[0]  # one batch: sources of different lengths, padded
    assert len({tuple(o) for o in ours}) > 1  # the translation depends on the source
    assert all(run == ours for run in runs)
    assert ours == _reference(inst, samples)  # after ours: generate installs hooks that dynamo cannot trace


def test_static_cache_keeps_its_addresses_through_the_beams(registry, monkeypatch):
    ctx = _ctx(registry, "t-t", ("static-kv",))
    pointers = []
    reorder = StaticKVCache.reorder

    def spy(cache, index, length=None):
        want = [b[:, :, :length].index_select(0, index) for b in cache.keys + cache.values]
        reorder(cache, index, length)
        assert length is not None and all(
            torch.equal(b[:, :, :length], w) for b, w in zip(cache.keys + cache.values, want))
        pointers.append([b.data_ptr() for b in cache.keys + cache.values])

    monkeypatch.setattr(StaticKVCache, "reorder", spy)
    ctx.decoder.run(ctx, ctx.instance.make_samples(2, 0, MAX_NEW))
    assert len(pointers) == MAX_NEW - 1 and all(p == pointers[0] for p in pointers)


def test_samples_follow_fleurs_lengths_and_the_encoder_is_a_phase(registry):
    ctx = _ctx(registry, "s-t")
    samples = ctx.instance.make_samples(4, 0, None)
    frames = [s.input_lengths["speech_frames"] for s in samples]
    assert all(170 <= f <= 1470 for f in frames) and len(set(frames)) > 1
    assert all(s.max_new_tokens == -(-f // 8) + 200 for s, f in zip(samples, frames))  # source length + 200
    t_t = _ctx(registry, "t-t").instance.make_samples(4, 0, None)
    assert all(12 <= s.input_lengths["text"] <= 80 for s in t_t)
    res = ctx.decoder.run(ctx, ctx.instance.make_samples(1, 0, 4))
    assert list(res.phases) == ["encoder", "prefill", "decode"] and res.phases["encoder"] > 0


def test_user_wavs_and_bad_audio(registry, tmp_path):
    import random

    write_wav(tmp_path / "a.wav", synthetic_speech(2.0, random.Random(0)))
    ctx = _ctx(registry, "s-t", data=str(tmp_path))
    (sample,) = ctx.instance.make_samples(1, 0, 4)
    assert sample.id == "data/a" and 95 <= sample.input_lengths["speech_frames"] <= 100  # 2 s at 50 Hz
    import wave

    with wave.open(str(tmp_path / "b.wav"), "wb") as w:  # 44.1 kHz: refused with the fix
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(44100)
        w.writeframes(np.zeros(44100, np.int16).tobytes())
    with pytest.raises(GenaccelError, match="44100 Hz; SeamlessM4T needs 16000 Hz"):
        ctx.instance.make_samples(2, 0, 4)
    (tmp_path / "b.wav").unlink()
    write_wav(tmp_path / "c.wav", np.zeros(SAMPLE_RATE, np.float32))
    with pytest.raises(GenaccelError, match="c.wav' is silent"):
        ctx.instance.make_samples(2, 0, 4)
    (tmp_path / "c.wav").write_bytes(b"")
    with pytest.raises(GenaccelError, match="not a readable PCM WAV"):
        ctx.instance.make_samples(2, 0, 4)


def test_unknown_language_and_empty_text(registry):
    with pytest.raises(GenaccelError, match=r"unknown language code \(--tgt-lang\) 'spn'; did you mean 'spa'"):
        prepared(registry, RunConfig(workload="seamless/t-t", preset="tiny", options={"tgt_lang": "spn"}))
    inst = prepared(registry, RunConfig(workload="seamless/t-t", preset="tiny",
                                       options={"src_lang": "fra", "tgt_lang": "deu"})).instance
    sample = inst.prompt_sample("Bonjour tout le monde.", 5, {})
    assert sample.source_ids[0] == inst.langs["fra"] and sample.input_ids == (3, inst.langs["deu"])
    with pytest.raises(GenaccelError, match="source text is empty"):
        inst.prompt_sample("  ", 5, {})


def _speech_reference(inst, sample):
    with torch.no_grad():
        out = inst.module.generate(input_ids=torch.tensor([sample.source_ids]), tgt_lang=inst.tgt_lang,
                                   generate_speech=True, return_intermediate_token_ids=True, num_beams=5,
                                   length_penalty=1.0, early_stopping=False, do_sample=False, max_new_tokens=MAX_NEW)
    return out.waveform[0, : int(out.waveform_lengths.view(-1)[0])], out.unit_sequences[0]


def test_text_to_speech_equals_transformers_and_the_vocoder_steps_keep_it(registry, tmp_path):
    import wave

    from genaccel_seamless.speech import speak

    ctx = _ctx(registry, "t-s", sharpen=1.0, out_dir=str(tmp_path))
    inst = ctx.instance
    (sample,) = inst.make_samples(1, 0, MAX_NEW)
    res = ctx.decoder.run(ctx, [sample])
    assert list(res.phases) == ["encoder", "prefill", "decode", "text decoder pass 2", "t2u", "vocoder"]
    # transformers drops the text's last token before the T2U, assuming it is EOS; on random weights the
    # text ends at the length limit instead, so hand the pipeline the text transformers keeps
    want_wave, want_units = _speech_reference(inst, sample)
    (audio_hf_input,), _ = speak(inst, [sample], [res.outputs[0][:-1]])
    assert torch.equal(inst.last_units[0], torch.where(want_units < 4, 1, want_units - 4))  # vocoder ids
    assert np.allclose(audio_hf_input, want_wave.numpy(), atol=1e-5)
    (path,) = res.records[0]["files"]
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32767
    assert len(audio) == round(res.records[0]["audio_s"] * 16000) > 0
    # the same weights, optimized: the same text and units and, within tolerance, the same audio
    compiled = _ctx(registry, "t-s", ("sdpa", "static-kv", "compile-kv-reorder", "channels-last", "compile-vocoder"),
                    sharpen=1.0, out_dir=str(tmp_path / "opt"))
    applied = [o.name for o in compiled.stack.applied]
    assert "channels-last" in applied and "vocoder convolutions run channels-last" in compiled.notes["channels-last"]
    if compiled.config.device == "cpu":  # the compiled vocoder loses to eager oneDNN convolutions there
        assert [s.name for s in compiled.stack.skipped] == ["compile-vocoder"]
        assert "needs device cuda" in compiled.stack.skipped[0].reason
    compiled.instance.module.load_state_dict(inst.module.state_dict())
    speak(inst, [sample], res.outputs)  # units of the whole text again, to compare with the optimized run
    again = compiled.decoder.run(compiled, [sample])
    assert again.outputs == res.outputs and torch.equal(compiled.instance.last_units, inst.last_units)
    (path2,) = again.records[0]["files"]
    with wave.open(path2) as w:
        audio2 = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32767
    assert len(audio2) == len(audio) and np.allclose(audio2, audio, atol=1e-3)


def test_speech_to_speech_writes_a_wav_per_sample(registry, tmp_path):
    import wave

    ctx = _ctx(registry, "s-s", out_dir=str(tmp_path))
    res = ctx.decoder.run(ctx, ctx.instance.make_samples(2, 0, 6))
    for rec in res.records:
        with wave.open(rec["files"][0]) as w:
            assert w.getframerate() == 16000 and w.getsampwidth() == 2
            assert w.getnframes() == round(rec["audio_s"] * 16000) > 0


def test_a_bfloat16_vocoder_keeps_the_text_and_reports_the_audio_snr(registry, tmp_path):
    from genaccel.testing import measure

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no bfloat16 instructions for oneDNN")
    config = RunConfig(workload="seamless/t-s", preset="tiny", samples=2, max_new_tokens=6, warmup=0,
                       optimizations=("bfloat16-vocoder",), out_dir=str(tmp_path))
    case = measure(registry, config, progress=False).to_dict()
    assert case["status"] == "ok" and case["optimizations"] == ["bfloat16-vocoder"] and not case["lossless"]
    acc = case["accuracy"]
    assert acc["exact_match_rate"] == 1.0  # the text decoder is untouched
    audio = acc["decoded"]
    assert audio["same_length_rate"] == 1.0 and len(audio["samples"]) == 2
    # bfloat16 keeps 8 bits of mantissa: the waveform differs, but by far less than its own energy
    assert audio["exact_match_rate"] == 0.0 and 15 < audio["min_snr_db"] <= audio["snr_db"] < 80


def test_checkpoints_saved_by_transformers_load_and_translate_alike(registry, tmp_path):
    ctx = _ctx(registry, "t-t")
    inst = ctx.instance
    folder = tmp_path / "seamless-tiny"
    inst.module.save_pretrained(folder)
    inst.tokenizer.save_pretrained(folder)
    loaded = prepared(registry, RunConfig(workload="seamless/t-t", checkpoint=str(folder)))
    loaded.max_seq_len = 64
    samples = inst.make_samples(2, 0, MAX_NEW)
    want = ctx.decoder.run(ctx, samples).outputs
    got = loaded.decoder.run(loaded, samples).outputs
    eos = inst.eos_token_id  # a checkpoint's hypotheses may end at EOS; random weights run to the limit
    assert all(g == w[: len(g)] and (len(g) == len(w) or g[-1] == eos) for g, w in zip(got, want))
    assert loaded.instance.langs == inst.langs
    (folder / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(GenaccelError, match="holds model_type 'llama'; this workload needs seamless_m4t_v2"):
        prepared(registry, RunConfig(workload="seamless/t-t", checkpoint=str(folder)))


def test_resampling_keeps_speech_band_and_removes_what_would_alias():
    from genaccel_seamless.recordings import resample

    t = np.arange(22050) / 22050
    tone = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 22050)
    assert tone.size == 16000
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(int(spectrum.argmax()) - 1000) <= 1  # 1 s at 16 kHz: bin = Hz
    high = resample(np.sin(2 * np.pi * 10_000 * t).astype(np.float32), 22050)  # above 8 kHz: would fold to 6 kHz
    assert np.abs(high[200:-200]).max() < 0.05


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng is not installed")
def test_spoken_inputs_follow_the_drawn_lengths(registry):
    import random

    from genaccel_seamless.recordings import recording, spoken
    from genaccel_seamless.workload import SENTENCES

    audio = spoken(SENTENCES[0])
    assert 2 < audio.size / SAMPLE_RATE < 10 and np.abs(audio).max() > 0.05  # a sentence, audible
    assert recording(12.5, SENTENCES, random.Random(0)).size == 12.5 * SAMPLE_RATE
    samples = _ctx(registry, "s-t").instance.make_samples(3, 0, 4)
    assert all(s.id.startswith("espeak/") for s in samples)


def test_bf16_kv_stores_the_self_attention_cache_in_bf16_and_reports_the_impact(registry):
    acc = check_bf16_kv(registry, RunConfig(workload="seamless/t-t", preset="tiny", samples=1, max_new_tokens=6))
    assert 0 <= acc["token_agreement"] <= 1 and acc["reference"].startswith("outputs of the unoptimized model")
