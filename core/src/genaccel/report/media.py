"""Generated media in an HTML report: each case's images, animated videos and speech for the same samples
(same prompt and seed) side by side, inline as data URIs, each lossy output captioned with its difference
from the unoptimized model's (PSNR/SSIM of images and frames, SNR of waveforms) from the case's accuracy
records.  The files are those each sample record lists (``files``)."""

from __future__ import annotations

import base64
import math
from pathlib import Path

from .html import Media, MediaGrid

#: suffix -> (element, MIME type) of the media a report shows
KINDS = {".png": ("img", "image/png"), ".jpg": ("img", "image/jpeg"), ".jpeg": ("img", "image/jpeg"),
         ".gif": ("img", "image/gif"), ".webp": ("img", "image/webp"), ".wav": ("audio", "audio/wav")}
INLINE_LIMIT = 8 * 2**20  # a larger file is named, not inlined (the page stays one file a browser opens quickly)


def locate(path: str, out_dir: Path) -> Path | None:
    """A sample's file as recorded, else under this report's folder (a report moved with its ``outputs/``)."""
    p = Path(path)
    if p.is_file():
        return p
    parts = p.parts
    if "outputs" in parts:
        moved = Path(out_dir, *parts[parts.index("outputs"):])
        if moved.is_file():
            return moved
    return None


def shown_file(files: list[str]) -> str | None:
    """The file that stands for a sample: an animation or a waveform first, else the last image (a
    cascade's last stage; a video's frames come after its GIF)."""
    media = [f for f in files if Path(f).suffix.lower() in KINDS]
    first = next((f for f in media if Path(f).suffix.lower() in (".gif", ".wav")), None)
    return first or (media[-1] if media else None)


def data_uri(path: Path) -> str | None:
    kind = KINDS.get(path.suffix.lower())
    if kind is None or path.stat().st_size > INLINE_LIMIT:
        return None
    return f"data:{kind[1]};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _db(x) -> str:
    return "∞" if x is None or (isinstance(x, float) and math.isinf(x)) else f"{x:.2f}"


def quality_captions(case: dict) -> dict[str, str]:
    """Per sample id, its output's difference from the unoptimized model's: PSNR/SSIM or SNR."""
    acc = case.get("accuracy") or {}
    media = acc if ("ssim" in acc or "snr_db" in acc) else acc.get("decoded") or {}
    out = {}
    for r in media.get("samples") or ():
        if "ssim" in r:
            out[r["id"]] = f"PSNR {_db(r.get('psnr_db'))} dB · SSIM {r['ssim']:.4f}"
        elif "snr_db" in r:
            out[r["id"]] = f"SNR {_db(r.get('snr_db'))} dB"
    return out


def _item(case: dict, record: dict, out_dir: Path, quality: dict[str, str]) -> Media | None:
    name = shown_file(record.get("files") or [])
    if name is None:
        return None
    path = locate(name, out_dir)
    tag = KINDS[Path(name).suffix.lower()][0]
    lossless = case.get("lossless") is not False and not case.get("accuracy")
    caption = quality.get(record["id"]) or ("lossless" if lossless else "")
    if path is None:
        return Media(tag=tag, src=None, caption=f"{caption} — {name} is missing".strip(" —"))
    uri = data_uri(path)
    if uri is None:
        return Media(tag=tag, src=None, caption=f"{caption} — {path} (not inlined: over 8 MiB)".strip(" —"))
    return Media(tag=tag, src=uri, caption=caption, title=f"{case['label']} · sample {record['id']} · {path.name}")


def media_grid(cases: list[dict], out_dir: Path) -> MediaGrid | None:
    """A row per sample of the first repetition (same prompt and seed), a column per case with media;
    None when no case wrote any."""
    shown = [c for c in cases if c.get("status") == "ok" and any(s.get("files") for s in c.get("samples") or ())]
    if not shown:
        return None
    ids, prompts = [], {}
    for c in shown:
        for s in c["samples"]:
            if s.get("repeat", 0) == 0 and s["id"] not in ids:
                ids.append(s["id"])
                prompts[s["id"]] = s.get("prompt")
    rows = []
    for sid in ids:
        items = []
        for c in shown:
            record = next((s for s in c["samples"] if s["id"] == sid and s.get("repeat", 0) == 0), None)
            items.append(_item(c, record, out_dir, quality_captions(c)) if record else None)
        rows.append((f"{sid}: {prompts[sid]}" if prompts.get(sid) else str(sid), items))
    return MediaGrid(columns=[c["label"] for c in shown], rows=rows,
                     caption="Generated outputs, same prompt and seed per row; lossy stacks captioned with their "
                             "difference from the unoptimized model's output")
