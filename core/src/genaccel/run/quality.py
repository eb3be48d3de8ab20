"""The quality impact of lossy stacks on media: PSNR and SSIM of images and video frames, the
signal-to-noise ratio of waveforms, against the unoptimized model's outputs on the same samples."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def media_impact(reference: dict, produced: dict) -> dict:
    """Images and videos (values in [0, 1], or uint8): PSNR and SSIM; waveforms (1-D): signal-to-noise ratio."""
    def unit(m):
        m = torch.as_tensor(m)
        return m.float() / 255 if m.dtype == torch.uint8 else m

    reference = {k: unit(m) for k, m in reference.items() if m is not None}
    produced = {k: unit(m) for k, m in produced.items() if m is not None}
    if not reference:
        return {}
    first = next(iter(reference.values()))
    return audio_impact(reference, produced) if first.dim() == 1 else image_impact(reference, produced)


def audio_impact(reference: dict, produced: dict) -> dict:
    """Signal-to-noise ratio in dB of every waveform against the unoptimized model's on the same
    sample (10·log10 of the reference's energy over the difference's, over their common length);
    None where they are equal, and whether the lengths agree."""
    rows = []
    for sid, want in reference.items():
        got = produced.get(sid)
        if got is None or want is None:
            continue
        want, got = torch.as_tensor(want).double().flatten(), torch.as_tensor(got).double().flatten()
        n = min(len(want), len(got))
        noise = float(((got[:n] - want[:n]) ** 2).sum())
        signal = float((want[:n] ** 2).sum())
        snr = None if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
        rows.append({"id": sid, "snr_db": snr, "same_length": len(want) == len(got), "samples": n,
                     "exact": noise == 0 and len(want) == len(got)})
    if not rows:
        return {}
    finite = [r["snr_db"] for r in rows if r["snr_db"] is not None]
    return {  # SNR None: equal waveforms; the mean over the samples that differ
        "reference": "waveforms of the unoptimized model on the same samples",
        "snr_db": sum(finite) / len(finite) if finite else None,
        "min_snr_db": min(finite) if finite else None,
        "same_length_rate": sum(r["same_length"] for r in rows) / len(rows),
        "exact_match_rate": sum(r["exact"] for r in rows) / len(rows),
        "samples": rows,
    }


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images with values in [0, 1] (inf when equal)."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) of two (H, W, C) images in [0, 1]: an 11x11 Gaussian
    window of sigma 1.5, K1 = 0.01, K2 = 0.03, per channel over the valid positions, averaged."""
    x = a.double().permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    y = b.double().permute(2, 0, 1)[:, None]
    size = min(window, x.shape[-1], x.shape[-2])
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]
    c1, c2 = 0.01**2, 0.03**2

    def blur(t):
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def image_impact(reference: dict, produced: dict) -> dict:
    """PSNR and SSIM of every output image (every frame of a video) against the unoptimized model's
    on the same sample; per sample the means over its frames, and the means over samples."""
    rows = []
    for sid, want in reference.items():
        got = produced.get(sid)
        if got is None or not torch.is_tensor(want):
            continue
        frames = [(got, want)] if want.dim() == 3 else list(zip(got, want))
        ps = [psnr(g, w) for g, w in frames]
        ss = [ssim(g, w) for g, w in frames]
        finite = [p for p in ps if math.isfinite(p)]
        rows.append({"id": sid, "psnr_db": sum(finite) / len(finite) if finite else None, "ssim": sum(ss) / len(ss),
                     "frames": len(frames), "exact": all(math.isinf(p) for p in ps)})
    if not rows:
        return {}
    finite = [r["psnr_db"] for r in rows if r["psnr_db"] is not None]
    return {  # PSNR None: equal images (infinite PSNR); means over the frames and samples that differ
        "reference": "images (frames) of the unoptimized model on the same samples, seeds and steps",
        "psnr_db": sum(finite) / len(finite) if finite else None,
        "ssim": sum(r["ssim"] for r in rows) / len(rows),
        "exact_match_rate": sum(r["exact"] for r in rows) / len(rows),
        "samples": rows,
    }
