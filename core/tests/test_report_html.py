"""report.html and the other commands' pages: self-contained (nothing fetched), the summary table first with
every case, figures as inline SVG with hover titles, generated media inline with their quality captions;
schema 1 and 2 reports both render."""

import base64
import html
import io
import json
import re
import wave
from pathlib import Path

from genaccel.report import html_pages
from genaccel.report.diffusion_plots import plot_memory, plot_operator_breakdown
from genaccel.report.render import render
from genaccel.report.results import SCHEMA_VERSION
from genaccel.report.store import load

FIXTURES = Path(__file__).parent / "fixtures"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAwMAAAAX/Af9Y8G8kAAAAAElFTkSuQmCC")


def _self_contained(page: str) -> None:
    """No element loads anything from elsewhere: every src and href is a data URI or a fragment."""
    for attr, value in re.findall(r'\b(src|href)="([^"]*)"', page):
        assert value.startswith(("data:", "#")), f"{attr}={value[:60]}"
    assert "<script src" not in page and "@import" not in page


def _case(label, tps, *, steps=(), invalid=False, sd=None, files=None, accuracy=None, lossless=True):
    samples = [{"id": str(i), "latency_s": 1 / tps, "units": 1, "batch": i, "repeat": 0, "step_ms": list(steps) or None,
                **({"files": [files[i]]} if files else {})} for i in range(2)]
    spread = {"n": 3, "values": [tps - 1, tps, tps + 1], "mean": tps, "sd": sd, "ci95": [tps - 2, tps + 2]} if sd else None
    return {"label": label, "status": "ok", "error": None, "workload": "x/y", "unit": "image", "preset": "tiny",
            "decoder": "nar", "optimizations": [] if label == "baseline" else [label], "batch_size": 1, "device": "cpu",
            "dtype": "float32", "skipped_optimizations": [], "optimization_notes": {}, "lossless": lossless,
            "samples": [{k: v for k, v in s.items() if v is not None} for s in samples], "accuracy": accuracy,
            "summary": {"unit": "image", "units": 2, "throughput_per_s": tps, "latency_s": {"mean": 1 / tps, "p50": 1 / tps},
                        "phase_s": {"text encoder": 0.1, "denoise": 0.8, "vae decode": 0.1},
                        "repeats": {"throughput_per_s": spread} if spread else None,
                        "contention": {"reasons": ["2 other processes"]} if invalid else None}}


def test_report_html_has_the_summary_first_figures_and_media(tmp_path):
    images = []
    for i in range(2):
        images.append(tmp_path / "outputs" / f"{i}.png")
        images[-1].parent.mkdir(exist_ok=True)
        images[-1].write_bytes(PNG)
    quality = {"psnr_db": 31.5, "ssim": 0.97, "samples": [{"id": "0", "psnr_db": 31.25, "ssim": 0.9712},
                                                          {"id": "1", "psnr_db": None, "ssim": 1.0}]}
    cases = [_case("baseline", 10.0, steps=(5.0, 4.0, 4.5), files=[str(p) for p in images]),
             _case("deepcache", 20.0, steps=(5.0, 1.0, 1.2), sd=0.5, files=[str(p) for p in images], accuracy=quality,
                   lossless=False),
             _case("sdpa", 12.0, invalid=True)]
    doc = {"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {
        "timestamp_utc": "2026-01-01T00:00:00Z", "command_line": "genaccel ablate x/y", "git": {"commit": "abc123", "dirty": True},
        "inputs": {"x/y": "the 12 built-in prompts"}}, "config": {}, "cases": cases}
    render(doc, tmp_path)
    page = (tmp_path / "report.html").read_text()
    _self_contained(page)
    first_table = page[page.index("<table"):page.index("</table>")]
    assert all(f">{label}<" in first_table for label in ("baseline", "deepcache", "sdpa"))
    assert "20.00 ± 0.50 images/s" in first_table and "18.00–22.00 (n=3)" in first_table
    assert "INVALID: contended" in first_table and page.index("<table") < page.index("<h2>")  # the summary comes first
    assert page.count("<svg") >= 4 and "<title>deepcache: 2.000× (20.00 ± 0.50 images/s)</title>" in html.unescape(page)
    assert "time per step" in page and "time by phase" in page and "<details>" in page
    assert page.count('src="data:image/png;base64,') == 4 and "PSNR 31.25 dB · SSIM 0.9712" in page
    assert "PSNR ∞ dB · SSIM 1.0000" in page and "lossless" in page
    assert "abc123 (with uncommitted changes)" in page and "the 12 built-in prompts" in page


def test_missing_media_is_named_not_a_broken_image(tmp_path):
    doc = {"schema_version": SCHEMA_VERSION, "kind": "run", "environment": {},
           **_case("baseline", 5.0, files=[str(tmp_path / "gone-0.png"), str(tmp_path / "gone-1.png")])}
    render(doc, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<img" not in page and "gone-0.png is missing" in page


def test_version_1_and_2_reports_render(tmp_path):
    for name in ("report-v1.json", "report-v1-ablate.json"):
        out = tmp_path / name
        out.mkdir()
        render(load(FIXTURES / name), out)
        page = (out / "report.html").read_text()
        _self_contained(page)
        assert "hstu" in page or "llama" in page


def test_audio_is_a_player_with_its_snr(tmp_path):
    wav = tmp_path / "outputs" / "0.wav"
    wav.parent.mkdir()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 160)
    wav.write_bytes(buf.getvalue())
    case = _case("bfloat16-vocoder", 3.0, files=[str(wav), str(wav)], lossless=False,
                 accuracy={"snr_db": 21.0, "min_snr_db": 20.5, "same_length_rate": 1.0,
                           "samples": [{"id": "0", "snr_db": 20.5}, {"id": "1", "snr_db": 21.5}]})
    render({"schema_version": SCHEMA_VERSION, "kind": "run", "environment": {}, **case}, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page.count('<audio controls preload="metadata" src="data:audio/wav;base64,') == 2 and "SNR 20.50 dB" in page


def _written(fn, doc, path):
    fn(doc, path)
    page = path.read_text()
    _self_contained(page)
    return page


def test_every_command_kind_has_a_page(tmp_path):
    profile = {"workload": "x/y", "label": "baseline", "device": "cpu", "method": "measured", "phases": {
        "decode": {"wall_us": 2000.0, "calls": 2, "categories": {"Linear": 1200.0, "Attention": 600.0}}}}
    page = _written(html_pages.write_profile_html, {"environment": {}, "profiles": [profile]}, tmp_path / "profile.html")
    assert "Where the time goes" in page and "<svg" in page

    case = _case("baseline", 4.0)
    stats = {"min": 1, "max": 2, "mean": 1.5}
    row = {"workload": "x/y", "samples": 2, "input": {"text": stats}, "unit": "image", "units": stats,
           "output_tokens": None, "decode_steps": None, "latency_ms": stats}
    page = _written(html_pages.write_characterize_html, {"environment": {}, "table": [row], "cases": [case]},
                    tmp_path / "characterize.html")
    assert "Table II form" in page and "<svg" in page

    pairs = [{"exit_layer": e, "draft_len": k, "seconds": 1.0 / (e + k), "speedup": 0.2 * (e + k), "acceptance_rate": 0.5,
              "tokens_per_cycle": 2.0, "same_tokens": True} for e in (1, 2) for k in (2, 4)]
    page = _written(html_pages.write_sweep_html, {"tokens": 64, "greedy_s": 1.0, "pairs": pairs, "best": pairs[-1]},
                    tmp_path / "sweep.html")
    assert "best: exit layer 2, draft length 4" in page and "<svg" in page

    rows = [{"label": "sdpa", "tp": n, "tokens_per_s": 10.0 * n ** 0.8, "efficiency": n ** -0.2} for n in (1, 2, 4)]
    page = _written(html_pages.write_scaling_html, {"sizes": [1, 2, 4], "rows": rows}, tmp_path / "scaling.html")
    assert "Tensor-parallel scaling over 1, 2, 4 ranks" in page and "<svg" in page

    calls = [{"step": s, "module": f"unet.b{i}", "kind": "spatial", "query_len": q, "key_len": q}
             for s in (0, 1) for i, q in enumerate((64, 16, 4, 16, 64))]
    shares = {"inference_s": 1.0, "attention_s": 0.4, "conv_s": 0.5, "attention_share": 0.4, "conv_share": 0.5}
    summary = {"max_seq_len": 64, "min_seq_len": 4, "seq_len_ratio": 16.0, "kinds": {"spatial": {"calls": 10, "seconds": 0.4,
                                                                                                  "flops": 1e9}}}
    entry = {"workload": "x/y", "preset": "tiny", "steps": 2, "eager": {"attention": "eager", **shares, "summary": summary,
                                                                         "sequence_profile": calls},
             "sdpa": {"attention": "sdpa", **shares}, "image_sweep": [
                 {"image_size": n, "eager": shares, "sdpa": shares} for n in (64, 128)], "frame_sweep": [],
             "fig7": {"baseline_s": 1.0, "sdpa_s": 0.8, "categories": ["Conv", "Attention", "Other"],
                      "bars": {"eager": {"Conv": 0.3, "Attention": 0.5, "Other": 0.2},
                               "sdpa": {"Conv": 0.3, "Attention": 0.3, "Other": 0.2}}},
             "memory": [{"image_size": n, "latent_shape": [1, 4, n // 8, n // 8], "eager_peak_bytes": n ** 4,
                         "sdpa_peak_bytes": n ** 3, "model_largest_bytes": n ** 4 // 2, "model_total_bytes": n ** 4}
                        for n in (64, 128)]}
    figures = {"fig7": plot_operator_breakdown([entry], tmp_path / "fig7.png"),
               "memory": plot_memory([entry], tmp_path / "memory.png")}
    assert all(p.stat().st_size > 1000 for p in figures.values())
    doc = {"environment": {}, "study": {"lengths": "lengths grow"}, "figures": {k: p.name for k, p in figures.items()},
           "workloads": [{"workload": "x/y", "records": [], "diffusion": entry}]}
    page = _written(html_pages.write_study_html, doc, tmp_path / "characterization.html")
    assert "16.0×" in page and page.count("<svg") == 2 and "Conv vs Attention over image size" in page
    assert "Operator breakdown over the baseline" in page and "0.800" in page  # the sdpa bar's total
    assert "Peak memory of a denoising step" in page and "256.000" in page  # 128**4 bytes in MiB
    assert page.count('src="data:image/png') == 2
    assert json.dumps(entry)  # the page's input is the command's JSON as written
