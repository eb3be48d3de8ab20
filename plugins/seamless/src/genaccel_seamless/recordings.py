"""English speech inputs spoken by espeak-ng, cached outside the tree.

Each Fleurs-like sentence is spoken once (22.05 kHz), resampled to 16 kHz and cached under
``$GENACCEL_CACHE/speech``; a sample joins sentences with short pauses until it reaches the length
drawn from the paper's Table II, and ends there.  Without espeak-ng the workload falls back to
speech-shaped synthetic signals (its samples then say ``synthetic-speech``).
"""

from __future__ import annotations

import hashlib
import io
import math
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import torch
from genaccel.api import cache_dir, warn, write_bytes

SAMPLE_RATE = 16_000
PAUSE_S = 0.3


def espeak() -> str | None:
    return shutil.which("espeak-ng")


def input_source(speech_in: bool, data) -> str:
    """Where a run's inputs come from: ``data``'s files, or spoken sentences where espeak-ng is installed
    and synthetic signals where not (two machines then bench different inputs)."""
    if data is not None:
        return f"{'WAV files' if speech_in else 'text files'} of --data {data}"
    if not speech_in:
        return "Fleurs-like English sentences"
    if espeak():
        return "English sentences spoken by espeak-ng (16 kHz)"
    return "synthetic speech-shaped signals (espeak-ng not installed)"


def resample(audio: np.ndarray, rate: int, to: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling: a windowed-sinc low-pass below the lower Nyquist rate, then
    linear interpolation onto the new grid."""
    if rate == to:
        return audio
    x = torch.from_numpy(audio.astype(np.float32))[None, None]
    if to < rate:
        cutoff = 0.45 * to / rate  # cycles per input sample
        n = torch.arange(-64, 65, dtype=torch.float32)
        taps = 2 * cutoff * torch.sinc(2 * cutoff * n) * torch.hann_window(129, periodic=False)
        x = torch.nn.functional.conv1d(x, (taps / taps.sum())[None, None], padding=64)
    length = math.floor(audio.size * to / rate)
    y = torch.nn.functional.interpolate(x, size=length, mode="linear", align_corners=False)
    return y[0, 0].numpy()


def _read(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, raw = w.getframerate(), w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0, rate


def spoken(sentence: str) -> np.ndarray:
    """``sentence`` spoken in US English at 16 kHz (cached)."""
    folder = cache_dir() / "speech"
    path = folder / (hashlib.sha1(sentence.encode()).hexdigest()[:16] + ".npy")
    if path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError) as e:
            warn(f"the cached recording {str(path)!r} is corrupt ({e}); speaking it again")
            path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([espeak(), "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True,
                       capture_output=True, timeout=60)
        audio, rate = _read(wav)
    audio = resample(audio, rate)
    buf = io.BytesIO()
    np.save(buf, audio)
    write_bytes(path, buf.getvalue())
    return audio


def recording(seconds: float, sentences: list[str], rng) -> np.ndarray:
    """Spoken sentences, in a random order, joined by pauses up to ``seconds``."""
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)
    parts, total, want = [], 0, int(seconds * SAMPLE_RATE)
    order = rng.sample(sentences, len(sentences))
    while total < want:
        for s in order:
            parts += [spoken(s), pause]
            total += parts[-2].size + pause.size
            if total >= want:
                break
    return np.concatenate(parts)[:want]
